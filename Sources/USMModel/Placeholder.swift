import USMFormat
