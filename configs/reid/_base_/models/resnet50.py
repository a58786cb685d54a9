# A torchreid model (any name of torchreid.models); pretrained: a local ImageNet file or None.
# Vanilla: no model.train_attack (AMD) and no model.nasty (NAT).
model = dict(name='resnet50', pretrained=None)
