import Foundation

/// Great-circle geometry on a spherical Earth (haversine), good to ~0.5 % — plenty for ranking edges.
public enum GreatCircle {
    /// Mean Earth radius in kilometres (IUGG).
    public static let earthRadiusKm = 6371.0088

    /// Distance in kilometres between two points given in degrees.
    public static func distanceKm(latitude1: Double, longitude1: Double, latitude2: Double, longitude2: Double) -> Double {
        let rad = Double.pi / 180
        let dLat = (latitude2 - latitude1) * rad
        let dLon = (longitude2 - longitude1) * rad
        let a = sin(dLat / 2) * sin(dLat / 2) + cos(latitude1 * rad) * cos(latitude2 * rad) * sin(dLon / 2) * sin(dLon / 2)
        return 2 * earthRadiusKm * asin(min(1, sqrt(a)))
    }
}
