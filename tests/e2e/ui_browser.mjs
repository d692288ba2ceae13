// Drive the Airflow UI served by `quant up` with the system's chromium (playwright-core: no
// browser download). Logs in, finds the daily_trading DAG and the quant_risk plugin's Risk page,
// opens a failed run's page and its "Run report" and "Data quality" tabs (the plugin's views in
// the UI's iframe) and the run's Data Docs, saves screenshots, records every request that left
// the server's host, and prints one JSON object with what it saw.
//
// usage: node ui_browser.mjs --base http://127.0.0.1:PORT --password PW --out DIR
//          [--chromium PATH] [--dag DAG_ID --run RUN_ID --failed-task TASK_ID]
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
  // page-level: requests of every frame, the plugin's iframes included
  page.on("request", (req) => {
    const url = new URL(req.url());
    if (url.protocol.startsWith("http") && url.host !== base.host) external.push(req.url());
  });
  const shot = async (name) => {
    const file = path.join(opts.out, name);
    await page.screenshot({ path: file, fullPage: true });
    result.screenshots.push(file);
  };
  // the plugin's page shown in the UI's iframe, once its document has a heading
  const pluginFrame = async () => {
    const frame = page.frameLocator("iframe").first();
    await frame.locator("h1").first().waitFor();
    return frame;
  };
  // a plugin tab of the run page: click it, else (no tab rendered) open its route
  const openRunTab = async (label, route, runUrl) => {
    const tab = page.getByRole("link", { name: label, exact: true }).or(
      page.getByRole("tab", { name: label, exact: true }),
    );
    try {
      await tab.first().waitFor({ timeout: 20_000 });
      await tab.first().click();
      result[`${route}Via`] = "tab";
    } catch {
      await page.goto(`${runUrl}/plugin/${route}`, { waitUntil: "domcontentloaded" });
      result[`${route}Via`] = "url";
    }
    await page.waitForURL(new RegExp(`/plugin/${route}$`));
    return page.url();
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

  // 3. the Risk entry of the navigation shows the plugin's page inside the UI; the kill form
  //    asks for no token (the server holds it)
  await page.getByRole("link", { name: "Risk" }).first().click();
  await page.waitForURL(/\/plugin\/risk/);
  result.riskUrl = page.url();
  const risk = await pluginFrame();
  await risk.locator("h1", { hasText: "Risk" }).waitFor();
  result.riskState = (await risk.locator(".state").first().textContent()).trim();
  result.riskHasKill = (await risk.locator('form[action*="kill"]').count()) > 0;
  result.riskHasTokenField =
    (await risk.locator('input[name="token"], input[type="password"]').count()) > 0;
  result.steps.push("risk_page");
  await shot("ui-risk.png");

  if (opts.run) {
    // 4. the failed run's page
    const dag = opts.dag || "daily_trading";
    const runUrl = new URL(
      `/dags/${encodeURIComponent(dag)}/runs/${encodeURIComponent(opts.run)}`,
      opts.base,
    ).href;
    await page.goto(runUrl, { waitUntil: "domcontentloaded" });
    await page.getByText(opts.run).first().waitFor();
    result.steps.push("run_opened");
    await shot("ui-run.png");

    // 5. its "Run report" tab: the run's own report, failed, naming the failed task
    result.runReportUrl = await openRunTab("Run report", "run-report", runUrl);
    const report = await pluginFrame();
    await report.locator("#summary").waitFor();
    result.reportBadge = (await report.locator("h1 .badge").first().textContent()).trim();
    result.reportTitle = (await report.locator("h1").first().textContent()).trim();
    const summary = await report.locator("#summary").textContent();
    result.reportSaysFailed = /Run failed/.test(summary);
    result.reportNamesTask = opts["failed-task"] ? summary.includes(opts["failed-task"]) : null;
    result.reportRunId = (await report.locator("p.meta code").first().textContent()).trim();
    result.steps.push("run_report");
    await shot("ui-run-report.png");

    // 6. its "Data quality" tab: the run's checks, a failed one first
    await page.goto(runUrl, { waitUntil: "domcontentloaded" });
    result.dataQualityUrl = await openRunTab("Data quality", "data-quality", runUrl);
    const quality = await pluginFrame();
    await quality.locator("table.checks").waitFor();
    const firstRow = quality.locator("table.checks tbody tr").first();
    result.dqFirstResult = (await firstRow.locator("td").first().textContent()).trim();
    result.dqFirstCheck = (await firstRow.locator("td").nth(2).textContent()).trim();
    result.dqRows = await quality.locator("table.checks tbody tr").count();
    result.steps.push("data_quality");
    await shot("ui-data-quality.png");

    // 7. the run's Great Expectations Data Docs, from the tab, served offline
    await quality.getByRole("link", { name: /Great Expectations Data Docs/ }).click();
    await quality.locator("#quant-offline").waitFor({ state: "attached" });
    result.dataDocsFailedListed = (await quality.locator(".quant-offline .failed").count()) > 0;
    result.steps.push("data_docs");
    await shot("ui-data-docs.png");
  }
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  result.externalRequests = external;
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.error ? 1 : 0);
