"""``python -m engine.cli …``: the engine's commands without the web (``regflow`` is ``web.cli``)."""
from engine.cli import main

if __name__ == "__main__":
    main()
