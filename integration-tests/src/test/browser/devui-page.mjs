// The Dev UI page in a real browser, against the demo in dev mode (./mvnw quarkus:dev):
//   npm install --prefix target/browser playwright-core
//   NODE_PATH=target/browser/node_modules node src/test/browser/devui-page.mjs [http://localhost:8080] [screenshot.png]
// Opens the extension's page, checks the served model and its generation, submits an edit through the form, waits for
// its outcome and for the generation to move, undoes it, and saves a screenshot. Exits non-zero on any failure.
import { createRequire } from 'module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const base = process.argv[2] ?? 'http://localhost:8080';
const shot = process.argv[3] ?? 'target/devui-page.png';
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(base + '/q/dev-ui/quarkus-memit/model-and-edits', { waitUntil: 'networkidle' });
    const model = page.locator('qwc-memit-model');
    await model.locator('#model').waitFor({ timeout: 60000 });
    const facts = await model.locator('#model').innerText();
    if (!facts.includes('gptj') || !facts.includes('Edits') || !facts.includes('on')) {
        throw new Error('unexpected model facts: ' + facts);
    }
    const before = await model.locator('#generation').innerText();
    await model.locator('#subject input').fill('Nekeil Krandpudrouk');
    await model.locator('#prompt input').fill('{} competes in');
    await model.locator('#target input').fill('baseball');
    await model.locator('#submit').click();
    await page.waitForFunction(() => {
        const el = document.querySelector('qwc-memit-model')?.shadowRoot?.getElementById('message');
        return el && / APPLIED| REJECTED|Failed/.test(el.innerText);
    }, null, { timeout: 180000 });
    const message = await model.locator('#message').innerText();
    if (!message.includes('APPLIED')) {
        throw new Error('the edit was not applied: ' + message);
    }
    await page.waitForFunction((b) => {
        const el = document.querySelector('qwc-memit-model')?.shadowRoot?.getElementById('generation');
        return el && el.innerText !== b;
    }, before, { timeout: 30000 });
    const after = await model.locator('#generation').innerText();
    const outcomes = await model.locator('#outcomes').innerText();
    await page.screenshot({ path: shot, fullPage: true });
    console.log('generation before: ' + before + '; after: ' + after + '; ' + message);
    console.log('outcomes grid: ' + outcomes.replace(/\s+/g, ' ').slice(0, 300));
    await model.locator('#undo').click();
    await page.waitForFunction(() => {
        const el = document.querySelector('qwc-memit-model')?.shadowRoot?.getElementById('message');
        return el && /Serving generation|Failed/.test(el.innerText);
    }, null, { timeout: 60000 });
    console.log('undo: ' + await model.locator('#message').innerText());
    console.log('screenshot: ' + shot);
} finally {
    await browser.close();
}
