"""Export the models that embed a NEW item in the serving process (ONNX Runtime only), with parity checks.

text_encoder: all-MiniLM-L6-v2 -> text_encoder.onnx + tokenizer.json; image_encoder: EfficientNetB0 ->
image_encoder.onnx; publish: both plus the two-tower item tower into a version, and the manifest section.
"""

from tastebud_training.item_embedding.publish import PARITY_TOLERANCE, ParityError, export_item_embedding

__all__ = ["PARITY_TOLERANCE", "ParityError", "export_item_embedding"]
