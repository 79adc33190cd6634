// The launch-per-step design that sessiond's browser pool replaces, as an
// `exec` check step: one Chromium launched per check, as the original tool did.
//
//   node bench/playwright_check.js FILE BASE_URL [PATH]
//
// Loads the storage state (Playwright's format) from FILE, opens BASE_URL+PATH
// (default /pwa), waits for div.homeSection, saves the storage state back to
// FILE and exits 0; exits 3 when the app routes to its login page, 1 otherwise.
// Needs playwright-core (see bench/README.md) and never downloads a browser:
// it runs Debian's Chromium, CHROMIUM_PATH (default the headless shell).
// NODE_PATH or a node_modules/ beside it must hold playwright-core.
"use strict";

const { chromium } = require("playwright-core");

const [file, baseUrl, path = "/pwa"] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM_PATH || "/usr/lib/chromium/chromium-headless-shell";

async function main() {
  const browser = await chromium.launch({ executablePath, headless: true });
  try {
    const context = await browser.newContext({ storageState: file });
    const page = await context.newPage();
    await page.goto(baseUrl + path, { waitUntil: "domcontentloaded", timeout: 30000 });
    // Logged in when the app renders its home; logged out when it routes to login.
    // Neither may reject unhandled once the other has won (the browser closes).
    const home = page.waitForSelector("div.homeSection", { timeout: 30000 }).then(() => 0, () => 1);
    const login = page.waitForURL(/\/login/, { timeout: 30000 }).then(() => 3, () => 1);
    const code = await Promise.race([home, login]);
    if (code === 0) await context.storageState({ path: file });
    return code;
  } finally {
    await browser.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(String(err && err.message ? err.message : err).split("\n")[0]);
    process.exit(1);
  },
);
