from .cli import entry

if __name__ == "__main__":  # not when a worker process re-imports this module
    entry()
