# Runtime shared by every classification config: hooks, logging, checkpoints, randomness.
custom_imports = dict(imports=['nat_tasks.cls'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # progress with ETA every `interval` iterations, and the per-term losses
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # keeps the last checkpoint and the best-robust one; written atomically (tmp file + rename)
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1, save_best='robust_acc',
                    rule='greater', backend_args=dict(backend='atomic_local')),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # checks validation images are not trained on; records meta['model_selection'] in checkpoints
    model_selection=dict(type='ModelSelectionHook'),
)
# reseeds torch/numpy/random from (seed, epoch): --resume reproduces the uninterrupted run
custom_hooks = [dict(type='EpochSeedHook')]

env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
# scalars.json (machine-readable) and TensorBoard event files under <work_dir>/<timestamp>/vis_data
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=50, by_epoch=True)
log_level = 'INFO'

randomness = dict(seed=0)
load_from = None
resume = False

val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='AdversarialAccuracy')
test_cfg = dict(type='TestLoop')
test_evaluator = val_evaluator
