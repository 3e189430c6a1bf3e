"""PyTorch / numpy reference of the Conformer RNN-T described in Architecture.md."""
