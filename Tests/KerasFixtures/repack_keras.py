"""Copies a Keras 3 `.keras` archive entry by entry with Python's zipfile (as
Keras writes them), optionally compressing every entry with deflate and
replacing config.json. The tests make their damaged or edited archives with it.

    python3 repack_keras.py SOURCE TARGET [--deflate] [--config CONFIG_JSON]
"""
import argparse
import zipfile


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--deflate", action="store_true", help="deflate every entry (Keras stores them)")
    parser.add_argument("--config", help="a file to store as config.json instead of the source's")
    args = parser.parse_args()
    compression = zipfile.ZIP_DEFLATED if args.deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(args.source) as source, zipfile.ZipFile(args.target, "w", compression=compression) as target:
        for item in source.infolist():
            if item.filename == "config.json" and args.config:
                with open(args.config, "rb") as f:
                    data = f.read()
            else:
                data = source.read(item.filename)
            target.writestr(item.filename, data)


if __name__ == "__main__":
    main()
