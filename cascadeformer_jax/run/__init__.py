"""Run management: work-directory layout and lock, stage recipes, checked writes, stop requests, runtime set-up,
the device mesh and the one-line errors of every command. Imports nothing else from the package."""
