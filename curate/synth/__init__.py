"""The test bed's data: a seeded synthetic math world (no torch, no network).

`families` makes problems and their worked solutions, `latex` writes answers,
`styles` and `responses` turn solutions into DeepSeek-R1-shaped teacher responses (with
controlled flaws), `references` writes the answer sources that tracing must search, and
`world` puts it all in a folder with a manifest of what is where. The tiny models built
on this world live in `train.tiny.models`.

Guide: docs/test-bed.md.
"""
