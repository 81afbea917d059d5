"""Docker HEALTHCHECK (docker/Dockerfile): exit 0 when the server's /health answers 200 on TTSPILOT_PORT.

Python rather than curl, so the image needs no extra package; /health needs no API key.
"""

import os
import sys
import urllib.request

url = f"http://127.0.0.1:{os.environ.get('TTSPILOT_PORT', '9234')}/health"
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except OSError as error:
    print(f"{url}: {error}", file=sys.stderr)
    sys.exit(1)
