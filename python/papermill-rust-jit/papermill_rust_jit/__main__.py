"""`python -m papermill_rust_jit ...` (or `papermill-rust ...`): papermill's own command line with the
Rust translator registered, for an environment where the `.pth` hook does not run (e.g. `python -S`)."""
from __future__ import annotations


def main() -> None:
    import papermill_rust_jit  # noqa: F401  (registers)
    from papermill.cli import papermill

    papermill()


if __name__ == "__main__":
    main()
