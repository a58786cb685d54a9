# Market-1501 as torchreid reads it: ROOT/market1501/Market-1501-v15.09.15/{bounding_box_train,
# query,bounding_box_test}; nothing is downloaded. Images stay in [0, 1] (the model normalises).
data = dict(root='data/', sources='market1501', height=256, width=128,
            transforms=['random_flip'], workers=0)
# identity-sampled batches (P identities x K images) for the batch-hard triplet loss
sampler = dict(train_sampler='RandomIdentitySampler', num_instances=4)
