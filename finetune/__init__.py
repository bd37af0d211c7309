"""Training scripts: the reply adapter (LoRA / AdaLoRA / QLoRA), the emotion classifier, the crisis
detector and the response ranker, with their data readers."""
