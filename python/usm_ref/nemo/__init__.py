"""NeMo Conformer/FastConformer transducers in usm-infer (issue 24).

- `import_nemo`: `.nemo` archive -> usm-infer container (docs/nemo-import.md has the mapping and the math).
- `reference`: a numpy forward pass that reads only the imported container and reproduces NeMo's features,
  subsampling, encoder output and greedy decoding (RNN-T, TDT, hybrid CTC head).
"""
