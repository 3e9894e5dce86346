#!/usr/bin/env node
// Render BPMN files to pictures (SVG + PNG) with bpmn-js in Debian's headless Chromium.
//
//   node tools/render_diagrams.mjs                      # every processes/*.bpmn -> processes/img/
//   node tools/render_diagrams.mjs a.bpmn b.bpmn        # only these files
//   node tools/render_diagrams.mjs --out DIR a.bpmn     # write the pictures to DIR
//
// The browser is /usr/bin/chromium (`apt-get install -y chromium fonts-liberation`), or the
// one named by CHROMIUM_PATH. Nothing is fetched from the network: the page and bpmn-js are
// served from 127.0.0.1 and every other request is aborted.

import { createServer } from 'node:http';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BPMN_JS_DIST = path.join(ROOT, 'node_modules', 'bpmn-js', 'dist');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const PNG_PADDING = 10;

const PAGE = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<link rel="stylesheet" href="/diagram-js.css">
<link rel="stylesheet" href="/bpmn-js.css">
<style>html, body { margin: 0; background: #fff; } #canvas { width: 100vw; height: 100vh; }</style>
<script src="/bpmn-viewer.js"></script>
</head>
<body>
<div id="canvas"></div>
<script>window.viewer = new BpmnJS({ container: '#canvas' });</script>
</body>
</html>`;

const ASSETS = {
  '/bpmn-viewer.js': ['bpmn-viewer.production.min.js', 'text/javascript'],
  '/diagram-js.css': [path.join('assets', 'diagram-js.css'), 'text/css'],
  '/bpmn-js.css': [path.join('assets', 'bpmn-js.css'), 'text/css'],
};

function usage() {
  return 'usage: node tools/render_diagrams.mjs [--out DIR] [FILE.bpmn ...]\n' +
    'Writes DIR/<stem>.svg and DIR/<stem>.png (default DIR: processes/img; default files: processes/*.bpmn).';
}

function parseArgs(argv) {
  const files = [];
  let out = path.join(ROOT, 'processes', 'img');
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      console.log(usage());
      process.exit(0);
    } else if (arg === '--out') {
      if (i + 1 >= argv.length) throw new Error('--out needs a directory');
      out = path.resolve(argv[i + 1]);
      i += 1;
    } else if (arg.startsWith('--out=')) {
      out = path.resolve(arg.slice('--out='.length));
    } else if (arg.startsWith('-')) {
      throw new Error(`unknown option ${arg}\n${usage()}`);
    } else {
      files.push(path.resolve(arg));
    }
  }
  return { files, out };
}

async function defaultFiles() {
  const dir = path.join(ROOT, 'processes');
  let names = [];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  return names.filter((name) => name.endsWith('.bpmn')).sort().map((name) => path.join(dir, name));
}

function startServer() {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    try {
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(PAGE);
        return;
      }
      const asset = ASSETS[url.pathname];
      if (!asset) {
        res.writeHead(404).end();
        return;
      }
      const body = await readFile(path.join(BPMN_JS_DIST, asset[0]));
      res.writeHead(200, { 'content-type': `${asset[1]}; charset=utf-8` });
      res.end(body);
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

// bpmn-js gives its arrow-head markers random ids; number them in order of appearance so
// that rendering the same diagram twice gives the same SVG (no churn in version control).
function stableMarkerIds(svg) {
  const ids = new Map();
  return svg.replace(/marker-[0-9a-z]{8,}/g, (id) => {
    if (!ids.has(id)) ids.set(id, `marker-${ids.size + 1}`);
    return ids.get(id);
  });
}

function svgSize(svg) {
  const open = svg.match(/<svg\b[^>]*>/);
  const attr = (name) => {
    const m = open && open[0].match(new RegExp(`\\s${name}="([0-9.]+)`));
    return m ? Number(m[1]) : NaN;
  };
  return { width: Math.ceil(attr('width')), height: Math.ceil(attr('height')) };
}

async function renderOne(viewerPage, pngPage, file, out) {
  const xml = await readFile(file, 'utf8');
  const result = await viewerPage.evaluate(async (source) => {
    try {
      const { warnings } = await window.viewer.importXML(source);
      window.viewer.get('canvas').zoom('fit-viewport');
      const { svg } = await window.viewer.saveSVG();
      if (!window.viewer.get('elementRegistry').getAll().some((e) => e.type !== 'bpmn:Collaboration' && e.type !== 'bpmn:Process')) {
        return { error: 'the diagram is empty', warnings: warnings.map((w) => w.message) };
      }
      return { svg, warnings: warnings.map((w) => w.message) };
    } catch (err) {
      return { error: String((err && err.message) || err), warnings: ((err && err.warnings) || []).map((w) => w.message) };
    }
  }, xml);
  const name = path.relative(process.cwd(), file) || file;
  for (const warning of result.warnings) console.error(`${name}: warning: ${warning}`);
  if (result.error) {
    const hint = /no diagram|empty/.test(result.error) ? ' (no BPMNDI: run python -m tools.bpmn_layout first)' : '';
    throw new Error(result.error + hint);
  }
  const svg = stableMarkerIds(result.svg);

  const stem = path.basename(file).replace(/\.bpmn$/i, '');
  const svgPath = path.join(out, `${stem}.svg`);
  const pngPath = path.join(out, `${stem}.png`);
  const { width, height } = svgSize(svg);
  if (!(width > 0 && height > 0)) throw new Error('the SVG has no size');
  await mkdir(out, { recursive: true });
  await writeFile(svgPath, svg.endsWith('\n') ? svg : `${svg}\n`);

  await pngPage.setViewportSize({ width: width + 2 * PNG_PADDING, height: height + 2 * PNG_PADDING });
  const inline = svg.replace(/^<\?xml[^>]*>\s*/, '').replace(/<!DOCTYPE[^>]*>\s*/i, '');
  await pngPage.setContent(
    `<!doctype html><html><body style="margin:0;background:#fff">` +
    `<div id="diagram" style="display:inline-block;padding:${PNG_PADDING}px;background:#fff;line-height:0">${inline}</div>` +
    `</body></html>`,
  );
  await pngPage.locator('#diagram').screenshot({ path: pngPath, animations: 'disabled' });
  console.log(`${name} -> ${path.relative(process.cwd(), svgPath)}, ${path.relative(process.cwd(), pngPath)} (${width + 2 * PNG_PADDING}x${height + 2 * PNG_PADDING})`);
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(err.message);
    return 2;
  }
  const files = args.files.length ? args.files : await defaultFiles();
  if (!files.length) {
    console.log('no BPMN files to render');
    return 0;
  }
  const server = await startServer();
  const base = `http://127.0.0.1:${server.address().port}`;
  let browser;
  let failures = 0;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--no-first-run', '--disable-sync'],
      timeout: 60_000,
    });
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
    // Only our local server; everything else (fonts, CDNs, telemetry...) is refused.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${base}/`) || url.startsWith('data:') || url === 'about:blank') return route.continue();
      return route.abort();
    });
    const viewerPage = await context.newPage();
    viewerPage.on('pageerror', (err) => console.error(`page error: ${err.message}`));
    await viewerPage.goto(`${base}/`);
    await viewerPage.waitForFunction(() => Boolean(window.viewer));
    const pngPage = await context.newPage();
    for (const file of files) {
      try {
        await renderOne(viewerPage, pngPage, file, args.out);
      } catch (err) {
        failures += 1;
        console.error(`${path.relative(process.cwd(), file) || file}: error: ${err.message}`);
      }
    }
  } finally {
    if (browser) await browser.close();
    server.close();
  }
  return failures ? 1 : 0;
}

process.exitCode = await main();
