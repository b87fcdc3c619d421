import Foundation

/// Great-circle geometry on a spherical Earth (haversine), good to ~0.5 % — plenty for ranking edges.
public enum GreatCircle {
    /// Mean Earth radius in kilometres (IUGG).
    public static let earthRadiusKm = 6371.0088

    static let radiansPerDegree = Double.pi / 180

    /// Distance in kilometres between two points given in degrees.
    public static func distanceKm(latitude1: Double, longitude1: Double, latitude2: Double, longitude2: Double) -> Double {
        distanceKm(latitude1: latitude1, longitude1: longitude1, cosLatitude1: cosLatitude(latitude1),
                   latitude2: latitude2, longitude2: longitude2, cosLatitude2: cosLatitude(latitude2))
    }

    /// The cosine of a latitude in degrees, as `distanceKm` uses it.
    static func cosLatitude(_ latitude: Double) -> Double { cos(latitude * radiansPerDegree) }

    /// `distanceKm` with each point's `cosLatitude` computed once (the answer engine's compile ranks every location
    /// against every region): the same operations in the same order, so the same result to the bit.
    static func distanceKm(latitude1: Double, longitude1: Double, cosLatitude1: Double,
                           latitude2: Double, longitude2: Double, cosLatitude2: Double) -> Double {
        let dLat = (latitude2 - latitude1) * radiansPerDegree
        let dLon = (longitude2 - longitude1) * radiansPerDegree
        let sLat = sin(dLat / 2), sLon = sin(dLon / 2)
        let a = sLat * sLat + cosLatitude1 * cosLatitude2 * sLon * sLon
        return 2 * earthRadiusKm * asin(min(1, sqrt(a)))
    }
}
