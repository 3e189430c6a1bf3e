"""SentencePiece unigram tokenizer with <blank> at id 0 and <unk> at id 1 (Architecture.md section 8)."""
from __future__ import annotations

import json

WORD_BOUNDARY = "\u2581"


def train_tokenizer(text_file: str, model_prefix: str, vocab_size: int = 256) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=text_file,
        model_prefix=model_prefix,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=1.0,
        pad_id=0, pad_piece="<blank>",  # control symbol at id 0, never produced by encode
        unk_id=1, unk_piece="<unk>",
        bos_id=-1, eos_id=-1,
        normalization_rule_name="identity",
        split_digits=True,
        num_threads=1,
    )


class Tokenizer:
    def __init__(self, model_file: str):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=model_file)
        self.pieces = [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]
        assert self.pieces[0] == "<blank>" and self.pieces[1] == "<unk>", self.pieces[:2]

    def __len__(self):
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text, out_type=int)

    def decode(self, ids) -> str:
        """Architecture.md section 8: concatenate pieces, U+2581 -> space, strip; blank never emitted."""
        return "".join(self.pieces[i] for i in ids if i != 0).replace(WORD_BOUNDARY, " ").strip()

    def metadata(self) -> dict:
        return {"type": "sentencepiece", "pieces": self.pieces, "blank_id": 0, "unk_id": 1}

    def save_metadata(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.metadata(), f, ensure_ascii=False)
