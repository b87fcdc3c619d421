import LodestarTopology

/// Anything that can place an address on the map; `GeoDatabase` is the real one, tests may supply tables.
public protocol GeoLocator: Sendable {
    /// The location (if known) and the prefix length of the network the answer holds for.
    func lookup(_ address: IPAddress) -> GeoLookup
}

/// A locator that knows nothing: every address is unlocated over the whole address space.
public struct NoGeoLocator: GeoLocator {
    public init() {}
    public func lookup(_ address: IPAddress) -> GeoLookup { GeoLookup(location: nil, prefixLength: 0) }
}
