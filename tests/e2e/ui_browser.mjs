// Drive the Airflow UI served by `quant up` with the system's chromium (playwright-core: no
// browser download). Logs in, finds the daily_trading DAG and the quant_risk plugin's Risk page,
// saves screenshots, and prints one JSON object with what it saw.
//
// usage: node ui_browser.mjs --base http://127.0.0.1:PORT --password PW --out DIR [--chromium PATH]
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

const opts = args(process.argv.slice(2));
const executablePath =
  opts.chromium || execFileSync("sh", ["-c", "command -v chromium"]).toString().trim();
mkdirSync(opts.out, { recursive: true });
const result = { executablePath, steps: [], screenshots: [] };

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const external = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(60_000);
  const base = new URL(opts.base);
  page.on("request", (req) => {
    const url = new URL(req.url());
    if (url.protocol.startsWith("http") && url.host !== base.host) external.push(req.url());
  });
  const shot = async (name) => {
    const file = path.join(opts.out, name);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
  };

  // 1. login (SimpleAuthManager's form)
  await page.goto(opts.base, { waitUntil: "domcontentloaded" });
  await page.locator('input[name="username"]').waitFor();
  await page.locator('input[name="username"]').fill("admin");
  await page.locator('input[name="password"]').fill(opts.password);
  await shot("ui-login.png");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => !url.pathname.includes("/auth/"), { timeout: 60_000 });
  await page.getByRole("link", { name: "Risk" }).first().waitFor();
  result.steps.push("logged_in");
  await shot("ui-home.png");

  // 2. the DAG list has daily_trading; its page opens
  await page.goto(new URL("/dags", opts.base).href, { waitUntil: "domcontentloaded" });
  const dagLink = page.getByRole("link", { name: "daily_trading" }).first();
  await dagLink.waitFor();
  result.steps.push("dag_listed");
  await shot("ui-dags.png");
  await dagLink.click();
  await page.waitForURL(/\/dags\/daily_trading/);
  await page.getByText("daily_trading").first().waitFor();
  result.steps.push("dag_opened");
  await shot("ui-dag-daily_trading.png");

  // 3. the Risk entry of the navigation shows the plugin's page inside the UI
  await page.getByRole("link", { name: "Risk" }).first().click();
  await page.waitForURL(/\/plugin\/risk/);
  result.riskUrl = page.url();
  const frame = page.frameLocator("iframe").first();
  await frame.locator("h1", { hasText: "Risk" }).waitFor();
  result.riskState = (await frame.locator(".state").first().textContent()).trim();
  result.riskHasKill = (await frame.locator('form[action*="kill"]').count()) > 0;
  result.steps.push("risk_page");
  await shot("ui-risk.png");
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  result.externalRequests = external;
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
