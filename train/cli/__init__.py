"""The trainer's `oxa` commands: train sft, train grpo, model prepare, eval, eval entropy."""
