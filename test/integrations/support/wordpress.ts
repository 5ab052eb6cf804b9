/**
 * A real WordPress for the plugin's tests: Debian's `wordpress` package (6.1, in
 * /usr/share/wordpress), PHP's CLI and built-in server, MariaDB at 127.0.0.1:3306 (root, no
 * password), integrations/wordpress-plugin-tessera installed and activated.
 *
 * - {@link findWordPress} checks PHP (with mysqli, curl, sodium, openssl), the WordPress
 *   files (or TESSERA_WORDPRESS_DIR) and MariaDB (or TESSERA_MARIADB=host:port); when PHP or WordPress are missing and the tests run as root, installs
 *   `php-cli php-mysql php-curl wordpress` with apt-get (as test/e2e/support/chromium.ts does
 *   for Chromium). Where it cannot, the tests are skipped with a message saying why — unless
 *   TESSERA_REQUIRE_WORDPRESS=1 (set by .ci/run), where that is a failure.
 * - {@link startWordPress} copies WordPress into a temporary directory with its own
 *   wp-config.php (nothing under /usr/share/wordpress or /etc/wordpress is touched), creates a
 *   fresh database, installs WordPress with wp_install() from php-cli, activates and
 *   configures the plugin, and serves it with `php -S` (several workers: the browser, Tessera's
 *   back-channel deliveries and the tests call it at once). close() stops the server and drops
 *   the database.
 *
 * A test-only must-use plugin (written here, never part of the plugin) adds what the tests
 * need and WordPress has no URL for: `?tessera_test_whoami` (who the request is signed in
 * as, and the Tessera sid of its session), `?tessera_test_logout` (wp_logout() outside
 * wp-login.php, as another plugin or a REST call would), another plugin's `logout_redirect`
 * filter (when the option `tessera_test_logout_redirect` is set), and a switch that makes the
 * back-channel endpoint answer 503 (the site's database is down) while a flag file exists.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PLUGIN_DIR = join(ROOT, 'integrations', 'wordpress-plugin-tessera');
/** Debian's WordPress, or TESSERA_WORDPRESS_DIR (a tree with wp-settings.php). */
const wordpressDir = (env: Record<string, string | undefined> = process.env) => env.TESSERA_WORDPRESS_DIR || '/usr/share/wordpress';
/** MariaDB's host and port: 127.0.0.1:3306, or TESSERA_MARIADB (host:port; user root, no password). */
const mariadb = (env: Record<string, string | undefined> = process.env) => {
  const [host = '127.0.0.1', port = '3306'] = (env.TESSERA_MARIADB || '127.0.0.1:3306').split(':');
  return { host, port: Number(port) };
};
const PHP = '/usr/bin/php';
const PACKAGES = ['php-cli', 'php-mysql', 'php-curl', 'wordpress'];

export type WordPressLookup = { skip: null } | { skip: string };
let lookup: WordPressLookup | undefined;

const phpReady = () => existsSync(PHP) && spawnSync(PHP, ['-r', 'exit(extension_loaded("mysqli") && extension_loaded("curl") && extension_loaded("sodium") && extension_loaded("openssl") ? 0 : 1);']).status === 0;
const wordpressReady = (dir: string) => existsSync(join(dir, 'wp-settings.php'));

/** Runs PHP code with php-cli; returns its exit status and output. */
function php(code: string, cwd?: string): { status: number | null; out: string } {
  const r = spawnSync(PHP, ['-d', 'display_errors=stderr', '-r', code], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

const connect = (env: Record<string, string | undefined> = process.env) => `mysqli_report(MYSQLI_REPORT_OFF); $db = @mysqli_connect(${JSON.stringify(mariadb(env).host)}, 'root', '', '', ${mariadb(env).port});`;

function locate(env: Record<string, string | undefined>): WordPressLookup {
  const WORDPRESS = wordpressDir(env);
  if (env.TESSERA_WORDPRESS_DIR && !wordpressReady(WORDPRESS)) return { skip: `TESSERA_WORDPRESS_DIR=${WORDPRESS} has no wp-settings.php` };
  if (!phpReady() || !wordpressReady(WORDPRESS)) {
    const root = process.getuid?.() === 0;
    const aptGet = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p));
    if (!root || !aptGet) return { skip: `PHP (with mysqli, curl, sodium, openssl) or WordPress (${WORDPRESS}) is missing, and the tests cannot install them (${!aptGet ? 'no apt-get' : 'not root'}). Install them with \`sudo apt-get install -y ${PACKAGES.join(' ')}\`.` };
    console.warn(`[wordpress tests] installing ${PACKAGES.join(' ')} with apt-get (once)…`);
    const install = () => spawnSync(aptGet, ['-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...PACKAGES], { stdio: 'inherit', timeout: 15 * 60_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (install().status !== 0) {
      spawnSync(aptGet, ['-o', 'DPkg::Lock::Timeout=600', 'update'], { stdio: 'inherit', timeout: 10 * 60_000 });
      install();
    }
    if (!phpReady() || !wordpressReady(WORDPRESS)) return { skip: `\`apt-get install -y ${PACKAGES.join(' ')}\` did not give PHP with mysqli, curl, sodium and openssl, and ${WORDPRESS}.` };
  }
  const db = php(`${connect(env)} if (!$db) { echo mysqli_connect_error(); exit(1); }`);
  if (db.status !== 0) return { skip: `MariaDB is not reachable at ${mariadb(env).host}:${mariadb(env).port} as root without a password: ${db.out.trim()}` };
  return { skip: null };
}

/**
 * Whether the WordPress tests can run. Throws under TESSERA_REQUIRE_WORDPRESS=1 when they
 * cannot; otherwise prints why they are skipped.
 */
export function findWordPress(env: Record<string, string | undefined> = process.env): WordPressLookup {
  const found = env === process.env ? (lookup ??= locate(env)) : locate(env);
  if (found.skip !== null) {
    if (env.TESSERA_REQUIRE_WORDPRESS === '1') throw new Error(`TESSERA_REQUIRE_WORDPRESS=1 but WordPress cannot run: ${found.skip}`);
    console.warn(`[wordpress tests skipped] ${found.skip}`);
  }
  return found;
}

export interface WordPressOptions {
  port: number;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** A WordPress user created at install (to be matched by email). */
  user: { login: string; email: string; password: string };
  match?: 'email' | 'sub';
  /** The password of WordPress' administrator (login `admin`). */
  adminPassword: string;
}

export interface RunningWordPress {
  url: string;
  dir: string;
  /** The PHP error log (the plugin's "[tessera] …" lines). */
  log(): string;
  /** While down, the back-channel endpoint answers 503; returns how many times it did. */
  setBackchannelDown(down: boolean): void;
  downAnswers(): number;
  /** Every POST to the back-channel endpoint: whether it was answered 503, and its claims. */
  deliveries(): Array<{ down: boolean; claims: Record<string, unknown> | null }>;
  /** Runs PHP code inside this WordPress (wp-load.php loaded); returns what it prints. */
  eval(code: string): string;
  close(): Promise<void>;
}

const MU_PLUGIN = `<?php
// Test-only (written by test/integrations/support/wordpress.ts; never part of the plugin).
add_filter('rest_pre_dispatch', function ($result, $server, $request) {
  if ($request->get_route() !== '/tessera/v1/backchannel-logout') return $result;
  // What each delivery carried (the claims, unverified: for the test to compare attempts).
  $parts = explode('.', (string) $request->get_param('logout_token'));
  $claims = count($parts) === 3 ? json_decode(base64_decode(strtr($parts[1], '-_', '+/')), true) : null;
  file_put_contents(TESSERA_TEST_TOKENS, wp_json_encode(array('down' => file_exists(TESSERA_TEST_DOWN_FLAG), 'claims' => $claims)) . "\n", FILE_APPEND | LOCK_EX);
  if (file_exists(TESSERA_TEST_DOWN_FLAG)) {
    file_put_contents(TESSERA_TEST_DOWN_COUNT, "503\\n", FILE_APPEND | LOCK_EX);
    return new WP_REST_Response(array('error' => 'test_down'), 503);
  }
  return $result;
}, 10, 3);
// Another plugin's 'logout_redirect' filter, after Tessera's (priority 99), when the test sets
// the option: it sends the browser to its own page instead of Tessera's end-session endpoint.
add_filter('logout_redirect', function ($to) {
  $other = get_option('tessera_test_logout_redirect');
  return is_string($other) && $other !== '' ? $other : $to;
}, 100);
// What WordPress would ask wordpress.org (blocked above) and warn about when it cannot: the
// translations on offer (the login page's language switcher; Debian ships languages) and the
// update checks of admin pages.
add_filter('translations_api', function ($result, $type) { return $type === 'core' ? array('translations' => array()) : $result; }, 10, 2);
add_action('admin_init', function () {
  remove_action('admin_init', '_maybe_update_core');
  remove_action('admin_init', '_maybe_update_plugins');
  remove_action('admin_init', '_maybe_update_themes');
}, 0);
add_action('init', function () {
  if (isset($_GET['tessera_test_whoami'])) {
    nocache_headers();
    $user = wp_get_current_user();
    $current = class_exists('Tessera_Sessions') ? Tessera_Sessions::current() : null;
    wp_send_json(array('user' => $user->exists() ? $user->user_login : null, 'user_id' => $user->ID, 'tessera_sid' => $current['sid'] ?? null, 'sessions' => $user->exists() ? count(WP_Session_Tokens::get_instance($user->ID)->get_all()) : 0));
  }
  if (isset($_GET['tessera_test_logout']) && is_user_logged_in()) {
    wp_logout();
    wp_send_json(array('logged_out' => true));
  }
});
`;

/** Copies, installs, configures and serves a WordPress. */
export async function startWordPress(options: WordPressOptions): Promise<RunningWordPress> {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-wp-'));
  const url = `http://127.0.0.1:${options.port}`;
  const database = `tessera_wp_${randomBytes(6).toString('hex')}`;
  const downFlag = join(dir, 'backchannel-down.flag');
  const downCount = join(dir, 'backchannel-down.count');
  const errorLog = join(dir, 'php-error.log');
  writeFileSync(errorLog, '');

  // WordPress' files (a copy, so that wp-config.php and wp-content are this test's own;
  // symlinks would not do: WordPress finds wp-config.php from its files' real paths).
  const wp = join(dir, 'wordpress');
  cpSync(wordpressDir(), wp, { recursive: true, dereference: true, filter: (src) => !/\/(wp-config\.php|\.htaccess|wp-content\/plugins\/akismet)$/.test(src) });
  mkdirSync(join(wp, 'wp-content', 'mu-plugins'), { recursive: true });
  mkdirSync(join(wp, 'wp-content', 'uploads'), { recursive: true });
  cpSync(PLUGIN_DIR, join(wp, 'wp-content', 'plugins', 'wordpress-plugin-tessera'), { recursive: true });
  writeFileSync(join(wp, 'wp-content', 'mu-plugins', 'tessera-test.php'), MU_PLUGIN);
  const salt = () => randomBytes(32).toString('hex');
  writeFileSync(join(wp, 'wp-config.php'), `<?php
define('DB_NAME', '${database}');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', '${mariadb().host}:${mariadb().port}');
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
${['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'].map((k) => `define('${k}', '${salt()}');`).join('\n')}
define('WP_HOME', '${url}');
define('WP_SITEURL', '${url}');
define('WP_DEBUG', false);
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
// Only 127.0.0.1: WordPress may reach its own host (Tessera and the forum listen there too),
// never wordpress.org (update checks, the login page's list of translations).
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('TESSERA_TEST_DOWN_FLAG', ${JSON.stringify(downFlag)});
define('TESSERA_TEST_DOWN_COUNT', ${JSON.stringify(downCount)});
define('TESSERA_TEST_TOKENS', ${JSON.stringify(join(dir, 'backchannel-tokens.jsonl'))});
$table_prefix = 'wp_';
if (!defined('ABSPATH')) define('ABSPATH', __DIR__ . '/');
require_once ABSPATH . 'wp-settings.php';
`);

  const created = php(`${connect()} if (!$db || !mysqli_query($db, 'CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4')) { echo mysqli_error($db); exit(1); }`);
  if (created.status !== 0) throw new Error(`creating the database: ${created.out}`);
  const dropDatabase = () => php(`${connect()} if ($db) mysqli_query($db, 'DROP DATABASE IF EXISTS \`${database}\`');`);

  const evalIn = (code: string): string => {
    const r = spawnSync(PHP, ['-d', 'display_errors=stderr', '-d', `error_log=${errorLog}`, '-r', `$_SERVER['HTTP_HOST'] = '127.0.0.1:${options.port}'; require 'wp-load.php'; ${code}`], { cwd: wp, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`php in WordPress failed (${r.status}): ${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  let server: ChildProcess | undefined;
  try {
    // Install as WordPress' installer does, then activate and configure the plugin (the
    // same option the settings page writes, through its own sanitize callback).
    const install = spawnSync(PHP, ['-d', 'display_errors=stderr', '-r', `
      define('WP_INSTALLING', true);
      $_SERVER['HTTP_HOST'] = '127.0.0.1:${options.port}';
      require 'wp-load.php';
      require_once ABSPATH . 'wp-admin/includes/upgrade.php';
      require_once ABSPATH . 'wp-admin/includes/plugin.php';
      $r = wp_install('Tessera test site', 'admin', 'admin@example.test', false, '', ${JSON.stringify(options.adminPassword)});
      update_option('permalink_structure', '/%postname%/');
      $u = wp_insert_user(array('user_login' => ${JSON.stringify(options.user.login)}, 'user_email' => ${JSON.stringify(options.user.email)}, 'user_pass' => ${JSON.stringify(options.user.password)}, 'role' => 'subscriber'));
      if (is_wp_error($u)) { fwrite(STDERR, $u->get_error_message()); exit(1); }
      $a = activate_plugin('wordpress-plugin-tessera/tessera.php');
      if (is_wp_error($a)) { fwrite(STDERR, $a->get_error_message()); exit(1); }
      echo 'ok';
    `], { cwd: wp, encoding: 'utf8', timeout: 60_000 });
    if (install.status !== 0 || !install.stdout.endsWith('ok')) throw new Error(`installing WordPress failed: ${install.stdout}${install.stderr}`);
    evalIn(`update_option('tessera_settings', Tessera_Settings::sanitize(array('issuer' => ${JSON.stringify(options.issuer)}, 'client_id' => ${JSON.stringify(options.clientId)}, 'client_secret' => ${JSON.stringify(options.clientSecret)}, 'match' => '${options.match ?? 'email'}', 'create_users' => '1', 'button_label' => 'Sign in with Tessera'))); echo 'ok';`);

    // OPcache on: without it every request compiles WordPress again (several times slower).
    server = spawn(PHP, ['-d', 'opcache.enable_cli=1', '-d', 'display_errors=0', '-d', 'log_errors=1', '-d', `error_log=${errorLog}`, '-S', `127.0.0.1:${options.port}`, '-t', wp], {
      cwd: wp,
      env: { ...process.env, PHP_CLI_SERVER_WORKERS: '4' },
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group: the workers are children of the server, stopped with it.
      detached: true,
    });
    let stderr = '';
    server.stderr!.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ok = await fetch(`${url}/wp-login.php`).then((r) => r.status === 200, () => false);
      if (ok) break;
      if (server.exitCode !== null || Date.now() > deadline) throw new Error(`php -S did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    if (server?.pid) process.kill(-server.pid, 'SIGTERM');
    dropDatabase();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    url,
    dir: wp,
    log: () => readFileSync(errorLog, 'utf8'),
    setBackchannelDown(down) {
      if (down) writeFileSync(downFlag, '1');
      else rmSync(downFlag, { force: true });
    },
    downAnswers: () => (existsSync(downCount) ? readFileSync(downCount, 'utf8').split('\n').filter(Boolean).length : 0),
    deliveries: () => (existsSync(join(dir, 'backchannel-tokens.jsonl')) ? readFileSync(join(dir, 'backchannel-tokens.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { down: boolean; claims: Record<string, unknown> | null }) : []),
    eval: evalIn,
    async close() {
      if (server && server.exitCode === null) {
        const exited = new Promise((resolve) => server!.once('exit', resolve));
        process.kill(-server.pid!, 'SIGTERM');
        await exited;
      }
      dropDatabase();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
