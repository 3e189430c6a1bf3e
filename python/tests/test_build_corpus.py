import importlib.util
import os

HERE = os.path.dirname(__file__)
spec = importlib.util.spec_from_file_location("build_corpus", os.path.join(HERE, "..", "scripts", "build_corpus.py"))
bc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bc)


def test_html_paragraphs():
    p = bc._Paras()
    p.feed('<html><h1>Title</h1><p>First para  here.</p><div class="para">Second &amp; <b>bold</b> one.</div>'
           '<p>Has <code>rm -rf</code> code.</p><pre>not this</pre><li>item text</li></html>')
    p.flush()
    assert p.paras[0] == "First para here."
    assert p.paras[1] == "Second & bold one."
    assert "\x00" in p.paras[2]  # code inside: poisoned, the sentence filter drops it
    assert "not this" not in " ".join(p.paras)
    assert p.paras[-1] == "item text"


def test_normalise():
    d = {"the", "cat", "sat", "on", "mat", "two", "cats"}
    assert bc.normalise("The cat sat on the mat.", d) == "the cat sat on the mat"
    assert bc.normalise("The 2 cats sat.", d) == "the two cats sat"
    assert bc.normalise("Run rm -rf / now", d) is None
    assert bc.normalise("The \x00 cat sat on the mat.", d) is None
