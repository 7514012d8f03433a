"""Training on one rank: models, optimisers, learning-rate schedules, straggler delays,
checkpoints, and the :class:`~ddlkit.train.trainer.Trainer` that ties them together."""
