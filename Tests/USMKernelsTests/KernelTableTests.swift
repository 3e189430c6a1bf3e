import CUSMKernels
import Foundation
import Testing
import USMKernels
import USMTensor

/// The C kernel table (usm_kernel_table.h) as the registry, dispatch and the tests read it.
@Suite struct KernelTable {
    /// The name suffix of each tier's kernels.
    static let suffixes: [KernelISA: Set<String>] = [
        .portable: ["portable"], .avx2: ["avx2"], .avx512: ["avx512vnni", "avx512f"],
        .avx512vbmi: ["avx512vbmi", "avx512vpopcntdq"], .neon: ["neon"], .neonDotprod: ["neondotprod"],
    ]

    @Test func namesStateTheContract() throws {
        let table = KernelRegistry.all + KernelRegistry.activationQuantizers
        #expect(table.count == Int(usm_kernel_count()))
        #expect(Set(table.map(\.name)).count == table.count, "contract names are unique")
        #expect(Set(table.map(\.id)) == Set((0..<usm_kernel_count()).map { $0 }))
        for d in KernelRegistry.all {
            // w<bits>a<bits>-<method>-<rows>x<tokens>-<isa>, f32 as "f32"
            let parts = d.name.split(separator: "-").map(String.init)
            #expect(parts.count >= 4, "\(d.name)")
            let bits = { (b: Int) in b == 32 ? "f32" : String(b) }
            #expect(parts[0] == "w\(bits(d.weightBits))a\(bits(d.activationBits))", "\(d.name)")
            #expect(parts[parts.count - 2] == "\(d.tileRows)x\(d.tileTokens)", "\(d.name)")
            #expect(Self.suffixes[d.isa]?.contains(parts[parts.count - 1]) == true, "\(d.name) on \(d.isa)")
            #expect(!d.schemes.isEmpty && !d.summary.isEmpty, "\(d.name)")
            if d.family == .float {
                #expect(d.schemes == QuantScheme.allCases, "\(d.name)")
            } else {
                #expect(d.schemes.allSatisfy { $0.bits == d.weightBits }, "\(d.name) serves \(d.schemes)")
            }
            #expect(d.needsBlocksOf32 == [.lookup8, .lookup6, .lookup5, .popcount].contains(d.family), "\(d.name)")
            #expect(d.singleToken == (d.family == .popcount), "\(d.name)")
        }
        for q in KernelRegistry.activationQuantizers {
            #expect(q.name == "a8-quant-\(q.isa == .avx512 ? "avx512" : q.isa.description)", "\(q.name)")
        }
    }

    @Test func schemeBitsAreTheContainerSchemeCodes() {
        let c: [(QuantScheme, Int32)] = [
            (.f32, Int32(USM_SCHEME_F32)), (.int8, Int32(USM_SCHEME_INT8)), (.int4, Int32(USM_SCHEME_INT4)),
            (.int2, Int32(USM_SCHEME_INT2)), (.bin, Int32(USM_SCHEME_BIN)), (.binNorm, Int32(USM_SCHEME_BIN_NORM)),
            (.binAsym, Int32(USM_SCHEME_BIN_ASYM)),
        ]
        for (s, bit) in c { #expect(bit == 1 << Int32(s.rawValue), "\(s)") }
        #expect(c.count == QuantScheme.allCases.count)
    }

    /// Within a family and weight and activation width, every tier comes after the faster tiers of its architecture,
    /// so "the first supported entry at or below a tier" is the fastest one.
    @Test func entriesGoFastestFirst() {
        let x86: [KernelISA] = [.avx512vbmi, .avx512, .avx2, .portable], arm: [KernelISA] = [.neonDotprod, .neon, .portable]
        let all = KernelRegistry.all + KernelRegistry.activationQuantizers
        for d in all {
            let peers = all.filter {
                $0.family == d.family && $0.weightBits == d.weightBits && $0.activationBits == d.activationBits
                    && $0.schemes == d.schemes && $0.singleToken == d.singleToken
            }
            for order in [x86, arm] {
                let tiers = peers.compactMap { order.firstIndex(of: $0.isa) }
                #expect(tiers == tiers.sorted(), "\(d.name): \(peers.map(\.name))")
            }
        }
    }

    /// The C dispatch (usm_qgemm, usm_fgemm, usm_quantize_act) selects from the same table as the Swift registry.
    @Test(arguments: KernelISA.allCases)
    func cDispatchAgreesWithTheRegistry(maxISA: KernelISA) {
        for bits in [1, 2, 4, 8] {
            let scheme: QuantScheme = bits == 1 ? .binAsym : bits == 2 ? .int2 : bits == 4 ? .int4 : .int8
            let id = usm_kernel_select(Int32(USM_FAMILY_QGEMM), Int32(bits), 8, maxISA.rawValue)
            let swift = KernelRegistry.all.first {
                $0.family == .tiles && $0.schemes.contains(scheme) && $0.isSupported && $0.isa.rawValue <= maxISA.rawValue
            }
            #expect(id == swift?.id ?? -1, "\(bits) bits at \(maxISA)")
            #expect(id >= 0, "a portable kernel always serves")
        }
        let f = usm_kernel_select(Int32(USM_FAMILY_FGEMM), 32, 32, maxISA.rawValue)
        #expect(f >= 0 && KernelRegistry.all.first { $0.id == f }?.family == .float)
        let q = usm_kernel_select(Int32(USM_FAMILY_QUANT), 0, 8, maxISA.rawValue)
        #expect(q == KernelRegistry.activationQuantizer(maxISA: maxISA).id)
        #expect(usm_kernel_at(-1) == nil && usm_kernel_at(usm_kernel_count()) == nil)
    }

    /// A kernel of a tier the CPU lacks (always true of the other architecture's) stops the process with its name
    /// instead of running or silently doing nothing.
    @Test func aKernelTheCPUCannotRunAborts() async {
        await #expect(processExitsWith: .failure) {
            let foreign = KernelRegistry.all.first { !$0.isSupported }!
            var c = usm_kernel_call()
            usm_kernel_run(foreign.id, &c)
        }
        await #expect(processExitsWith: .failure) {
            var c = usm_kernel_call()
            usm_kernel_run(usm_kernel_count(), &c)
        }
    }
}
