import Foundation

/// JSON text of a JSON object built from dictionaries, arrays, strings, numbers, booleans and `NSNull` (nil optionals
/// write null, non-finite numbers too): keys sorted, `/` not escaped, as `JSONSerialization` with `.sortedKeys` and
/// `.withoutEscapingSlashes` writes it, without its bridging cost (a stream sends one message per chunk). A value of
/// another type falls back to `JSONSerialization` for that value.
func jsonText(_ object: Any) -> String {
    var out = ""
    out.reserveCapacity(64)
    writeJSON(object, into: &out)
    return out
}

private protocol OptionalJSON { var wrapped: Any? { get } }
extension Optional: OptionalJSON {
    var wrapped: Any? { self.map { $0 as Any } }
}

private func writeJSON(_ value: Any, into out: inout String) {
    switch value {
    case let s as String: writeJSONString(s, into: &out)
    case let b as Bool: out += b ? "true" : "false"
    case let i as Int: out += String(i)
    case let d as Double: writeJSONNumber(d, into: &out)
    case let f as Float: writeJSONNumber(Double(f), into: &out)
    case let i as Int64: out += String(i)
    case let i as Int32: out += String(i)
    case let i as UInt64: out += String(i)
    case let i as UInt32: out += String(i)
    case is NSNull: out += "null"
    case let j as SendableJSON: writeJSON(j.value, into: &out)
    case let d as [String: Any]:
        out += "{"
        for (n, key) in d.keys.sorted().enumerated() {
            if n > 0 { out += "," }
            writeJSONString(key, into: &out)
            out += ":"
            writeJSON(d[key]!, into: &out)
        }
        out += "}"
    case let a as [Any]:
        out += "["
        for (n, element) in a.enumerated() {
            if n > 0 { out += "," }
            writeJSON(element, into: &out)
        }
        out += "]"
    case let o as OptionalJSON:
        if let w = o.wrapped { writeJSON(w, into: &out) } else { out += "null" }
    default:
        if let data = try? JSONSerialization.data(withJSONObject: [value], options: [.withoutEscapingSlashes]) {
            out += String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
        } else {
            out += "null"
        }
    }
}

private func writeJSONNumber(_ d: Double, into out: inout String) {
    guard d.isFinite else { out += "null"; return }
    // integral values within 2^53 as integers (as JSONSerialization writes them), others in Swift's shortest form
    if d == d.rounded(), abs(d) < 9_007_199_254_740_992 { out += String(Int64(d)) } else { out += "\(d)" }
}

private func writeJSONString(_ s: String, into out: inout String) {
    out += "\""
    var plain = true
    for u in s.utf8 where u < 0x20 || u == 0x22 || u == 0x5C { plain = false; break }
    if plain {
        out += s
    } else {
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
    }
    out += "\""
}
