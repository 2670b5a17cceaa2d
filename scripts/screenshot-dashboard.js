// Takes a screenshot of the status page with Playwright (the driver shipped in the Microsoft.Playwright NuGet package)
// and the system chromium. Run by scripts/screenshot-dashboard.sh: PW_PACKAGE, DASHBOARD_URL and OUT come from it.
const { chromium } = require(process.env.PW_PACKAGE);

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage({ viewport: { width: 1280, height: 360 }, locale: 'en-GB', timezoneId: 'UTC' });
  await page.goto(process.env.DASHBOARD_URL);
  await page.waitForSelector('tr[data-view] svg.chart polyline');
  await page.waitForFunction(() => !document.getElementById('scheduler').textContent.startsWith('Loading'));
  await page.screenshot({ path: process.env.OUT, fullPage: true });
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
