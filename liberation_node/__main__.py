"""`python -m liberation_node`: the same as the `liberation-node` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="liberation-node")
