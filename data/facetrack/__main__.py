"""Entry point of ``python -m data.facetrack``; see data/facetrack/cli.py."""
import sys

from data.facetrack import cli

if __name__ == "__main__":
  sys.exit(cli.main())
