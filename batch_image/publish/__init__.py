"""How results become visible: one protocol over local directories and S3 prefixes."""
