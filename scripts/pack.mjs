// `npm run pack [-- --out DIR]`: builds, then writes one npm tarball per publishable package
// into DIR (default ./tarballs): @tessera/sdk, @tessera/browser, and the server
// (@tessera/server, with the `tessera` executable) with the two packages it depends on,
// @tessera/core and @tessera/store. Until they are on a registry, install them from there:
//
//   npm install /path/to/tessera/tarballs/tessera-sdk-0.1.0.tgz
//   npm install …/tessera-core-0.1.0.tgz …/tessera-store-0.1.0.tgz …/tessera-server-0.1.0.tgz
//
// Why a staging copy rather than `npm pack` in packages/*: the workspace manifests keep what
// only the workspace needs — `private: true` (so they are never published by accident), the
// `tessera-source` export condition (vitest runs the TypeScript sources through it) and
// devDependencies on sibling packages. Each tarball gets a manifest without those, with
// `files`, `engines` and the license, and only compiled JavaScript and type declarations.
// Publishing is then `npm publish tarballs/<file>.tgz`.
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBuilt, ensureInstalled } from './ensure.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The packages that become tarballs, in dependency order. */
export const PACKAGES = ['core', 'store', 'server', 'sdk', 'browser'];

/** The manifest of the tarball, made from the workspace manifest. */
export function publicManifest(manifest, rootManifest) {
  const { private: _private, devDependencies: _dev, scripts: _scripts, ...rest } = manifest;
  const exports = {};
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    if (typeof target === 'string') {
      exports[subpath] = target;
      continue;
    }
    // Drop the workspace-only condition: it points at src/, which is not in the tarball.
    const { 'tessera-source': _source, ...conditions } = target;
    exports[subpath] = conditions;
  }
  return {
    ...rest,
    exports,
    license: manifest.license ?? rootManifest.license,
    engines: rootManifest.engines,
    files: ['dist', 'README.md', 'LICENSE'],
  };
}

/** Copies compiled JavaScript and declarations (no source maps: their sources are not shipped). */
function copyDist(from, to) {
  cpSync(from, to, { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.tsbuildinfo') });
}

/**
 * Stages and packs every package into `outDir`; returns the tarball paths by package name
 * (`@tessera/sdk` → `/…/tessera-sdk-0.1.0.tgz`).
 */
export function packAll(outDir, { build = true, log = console.log } = {}) {
  if (build) {
    ensureInstalled();
    ensureBuilt();
  }
  const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  mkdirSync(outDir, { recursive: true });
  const staging = mkdtempSync(join(tmpdir(), 'tessera-pack-'));
  const tarballs = {};
  try {
    for (const name of PACKAGES) {
      const dir = join(root, 'packages', name);
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      if (!existsSync(join(dir, 'dist'))) throw new Error(`${manifest.name}: no dist/ (build first)`);
      const stage = join(staging, name);
      mkdirSync(stage);
      copyDist(join(dir, 'dist'), join(stage, 'dist'));
      copyFileSync(join(dir, 'README.md'), join(stage, 'README.md'));
      copyFileSync(join(root, 'LICENSE'), join(stage, 'LICENSE'));
      writeFileSync(join(stage, 'package.json'), `${JSON.stringify(publicManifest(manifest, rootManifest), null, 2)}\n`);
      const out = execFileSync('npm', ['pack', '--json', '--pack-destination', outDir], {
        cwd: stage,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, npm_config_update_notifier: 'false' },
      });
      const [{ filename }] = JSON.parse(out);
      tarballs[manifest.name] = join(outDir, filename);
      log(`${manifest.name}: ${join(outDir, filename)}`);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return tarballs;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { out: { type: 'string', default: join(root, 'tarballs') } } });
  const outDir = resolve(values.out);
  const tarballs = packAll(outDir);
  const file = (name) => tarballs[name];
  console.log(`\nInstall them into a project of yours (until they are on a registry):`);
  console.log(`  npm install ${file('@tessera/sdk')}`);
  console.log(`  npm install ${file('@tessera/browser')}`);
  console.log(`  npm install ${file('@tessera/core')} ${file('@tessera/store')} ${file('@tessera/server')}   # then: npx tessera start`);
}
