// NOTE for GeoDatabase.swift: these two result types are shared with EdgeSelector and live here
// (written by the lead); GeoDatabase returns them — do not redeclare them.

/// Where GeoIP places an address.
public struct GeoLocation: Sendable, Equatable, Hashable {
    public var latitude: Double
    public var longitude: Double
    /// ISO 3166-1 alpha-2 country code.
    public var country: String?
    /// Two-letter continent code (AF AN AS EU NA OC SA).
    public var continent: String?
    public var city: String?

    public init(latitude: Double, longitude: Double, country: String? = nil, continent: String? = nil, city: String? = nil) {
        self.latitude = latitude
        self.longitude = longitude
        self.country = country
        self.continent = continent
        self.city = city
    }
}

/// The result of one GeoIP lookup.
public struct GeoLookup: Sendable, Equatable {
    /// The location, or nil when the database has none for the address.
    public var location: GeoLocation?
    /// Prefix length (in the query's address family) of the database network that holds the address,
    /// found or not: every address in that network gets the same answer (RFC 7871 §7.2.1 SCOPE).
    public var prefixLength: Int

    public init(location: GeoLocation?, prefixLength: Int) {
        self.location = location
        self.prefixLength = prefixLength
    }
}
