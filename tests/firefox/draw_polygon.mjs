// Firefox check: log in, draw a polygon on the annotation page, label it malignant, wait for the
// autosave. Prints one JSON line with what the page saw. Usage:
//   node draw_polygon.mjs BASE_URL IMAGE_ID USERNAME PASSWORD SCREENSHOT
import puppeteer from "puppeteer-core";

const [base, imageId, username, password, screenshot] = process.argv.slice(2);
const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
  headless: true,
  defaultViewport: { width: 1366, height: 768 },
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/accounts/login/");
  await page.type("input[name=username]", username);
  await page.type("input[name=password]", password);
  await Promise.all([page.waitForNavigation(), page.click("main form [type=submit]")]);
  await page.goto(`${base}/images/${imageId}/annotate/`);
  await page.waitForFunction(() => window.busPage && window.busPage.ready && window.busViewer && window.busViewer.imageLoaded);
  await page.click("#tool-polygon");
  // The label first: B/M right after closing an outline label the next one (issue 9).
  await page.keyboard.press("m");
  const points = [[300, 200], [420, 190], [460, 300], [350, 360]];
  for (const [x, y] of [...points, points[0]]) {
    const c = await page.evaluate((x, y) => window.busViewer.imageToPage(x, y), x, y);
    await page.mouse.click(c.x, c.y);
    await new Promise((r) => setTimeout(r, 120));
  }
  await page.waitForFunction(
    () => document.getElementById("save-state").textContent.trim() === "saved" && window.busPage.layer.version > 1,
    { timeout: 15000 },
  );
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ browser: await browser.version(), errors, version: await page.evaluate(() => window.busPage.layer.version) }));
} finally {
  await browser.close();
}
