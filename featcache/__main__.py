"""``python -m featcache`` (and so ``torchrun ... -m featcache``): the ``featcache`` command.

The one place the library reaches the CLI: an entry point, imported by nothing.
"""

from cli.app import main

if __name__ == "__main__":
    main()
