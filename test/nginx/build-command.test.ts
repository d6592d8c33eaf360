// `eppkit build nginx` end to end: builds (or finds up to date) the module with cargo against
// Debian's nginx-dev tree and prints the absolute .so path as its last stdout line; that .so
// is the one the nginx driver loads, and Debian's nginx accepts it (`nginx -t` with load_module).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NginxDriver } from '../../harness/data-planes/nginx-driver.ts';

const ci = process.env.CI === 'true' || process.env.CI === '1';
const tools = spawnSync('cargo', ['--version']).status === 0 && existsSync('/usr/share/nginx/src/configure') && spawnSync('/usr/sbin/nginx', ['-v']).status === 0;
if (!tools && !ci) process.stderr.write('[skip] eppkit build nginx: needs cargo, nginx and nginx-dev (scripts/setup-system.sh)\n');

describe.skipIf(!tools && !ci)('eppkit build nginx', () => {
  it('prints the .so path last; the driver uses it; Debian nginx loads it', { timeout: 900_000 }, () => {
    const r = spawnSync(process.execPath, ['cli/eppkit.ts', 'build', 'nginx', '--quiet'], { encoding: 'utf8', timeout: 890_000 });
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const so = lines.at(-1)!;
    expect(isAbsolute(so)).toBe(true);
    expect(so).toMatch(/libngx_http_rust_epp_module\.so$/);
    expect(existsSync(so)).toBe(true);
    if (!process.env.EPPKIT_NGINX_MODULE) expect(new NginxDriver().modulePath()).toBe(so);
    const dir = mkdtempSync(join(tmpdir(), 'eppkit-nginx-t-'));
    writeFileSync(
      join(dir, 'nginx.conf'),
      `load_module ${so};\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp { server { listen 127.0.0.1:1; location / { epp_endpoint 127.0.0.1:2; epp_timeout_ms 100; proxy_pass http://$inference_workload_endpoint; } } }\n`,
    );
    const t = spawnSync('/usr/sbin/nginx', ['-t', '-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    expect(t.status, t.stderr).toBe(0);
    // A bad directive value is refused at config time with the module's own message.
    writeFileSync(join(dir, 'bad.conf'), `load_module ${so};\npid ${dir}/nginx.pid;\nevents {}\nhttp { server { listen 127.0.0.1:1; location / { epp_body_mode sideways; } } }\n`);
    const bad = spawnSync('/usr/sbin/nginx', ['-t', '-p', `${dir}/`, '-c', join(dir, 'bad.conf'), '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('epp_body_mode: invalid body mode "sideways"');
  });
});
