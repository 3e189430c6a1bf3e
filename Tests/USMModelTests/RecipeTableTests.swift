import Foundation
import Testing
import USMFormat
import USMModel

/// The recipe table the Python toolkit reads (`python/usm_ref/recipes.json`) is the one this runtime packs with:
/// after a change to `Recipe.all` or to the tensor inventory, regenerate it with `usm-pack recipes --json`.
@Suite struct RecipeTable {
    @Test func pythonReadsTheSwiftTable() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("python/usm_ref/recipes.json")
        let file = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: path))
        #expect(file == Recipe.tableJSON(), "python/usm_ref/recipes.json is stale: regenerate it with `usm-pack recipes --json`")
        guard case .array(let names)? = Recipe.tableJSON()["encoder_matrices"] else { Issue.record("no encoder_matrices"); return }
        #expect(names.count == 11, "two FFNs x 2, five attention projections, two pointwise convs")
    }
}
