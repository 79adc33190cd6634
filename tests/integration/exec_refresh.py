"""An `exec` refresh step, as a site needing its own script would use: gets a
private copy of the session file, checks and refreshes against the site,
updates the copy, and says the outcome by exit status (0 ok, 3 logged out,
anything else transient). Stands in for a Playwright script in the tests."""

import http.client
import json
import sys
import urllib.parse

path, base_url = sys.argv[1], sys.argv[2]
with open(path) as f:
    state = json.load(f)
url = urllib.parse.urlparse(base_url)
jar = {c["name"]: c["value"] for c in state["cookies"]}


def request(method, target):
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=5)
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    conn.request(method, target, body=b"" if method == "POST" else None,
                 headers={"Cookie": cookie, "Content-Length": "0"} if method == "POST" else {"Cookie": cookie})
    res = conn.getresponse()
    body = res.read()
    for name, value in res.getheaders():
        if name.lower() == "set-cookie":
            k, v = value.split(";", 1)[0].split("=", 1)
            jar[k.strip()] = v.strip()
    conn.close()
    return res.status, body


status, body = request("GET", "/pwa")
if status in (301, 302, 303, 401, 403):
    sys.exit(3)
if status != 200 or b"homeSection" not in body:
    sys.exit(1)
status, body = request("POST", "/api/refresh")
if status == 401:
    sys.exit(3)
if status != 200:
    sys.exit(1)
for c in state["cookies"]:
    if c["name"] in jar:
        c["value"] = jar[c["name"]]
with open(path, "w") as f:
    json.dump(state, f)
sys.exit(0)
