"""The subcommands of `python -m zoo`, one module each (`run(args) -> exit code`).

`zoo/__main__.py` holds the parser and imports a subcommand's module only when it runs;
`common` holds what they share (loading a model by what it can do, progress, output checks).
"""

COMMANDS = ("eval", "upscale", "sample", "predict")  # module names under zoo.cli
