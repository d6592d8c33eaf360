// deploy/ rendered by the real kustomize: every object validates against the Kubernetes API
// schemas (@kubernetes-models; InferencePool against its documented fields), and the objects
// agree with each other and with what `eppkit build images` makes — the checks a cluster would
// otherwise only make at `kubectl apply` time, or not at all (a probe on the wrong port, a pool
// selecting no pod, an EPP Service without the port the pool names).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute';
import { IMAGES } from '../../harness/containers/build-images.ts';
import { parseBenchOptions } from '../../harness/bench/bench-options.ts';
import { flagsToOptions } from '../../harness/bench/bench-command.ts';
import { inferencePoolSchema } from './inference-pool-schema.ts';
import { kustomizeBuild, kustomizeSkipReason, type K8sObject } from './kustomize.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
const skip = kustomizeSkipReason();
const OVERLAYS = ['overlays/kind', 'overlays/registry', 'overlays/fail-open', 'overlays/bbr'] as const;

const VALIDATORS: Record<string, (o: K8sObject) => void> = {
  'v1/Namespace': (o) => new Namespace(o as never).validate(),
  'v1/ConfigMap': (o) => new ConfigMap(o as never).validate(),
  'v1/Service': (o) => new Service(o as never).validate(),
  'apps/v1/Deployment': (o) => new Deployment(o as never).validate(),
  'batch/v1/Job': (o) => new Job(o as never).validate(),
  'gateway.networking.k8s.io/v1/HTTPRoute': (o) => new HTTPRoute(o as never).validate(),
  'inference.networking.k8s.io/v1/InferencePool': (o) => {
    const r = inferencePoolSchema.safeParse(o);
    if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  },
};

function find(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} in the build`);
  return o;
}

/** `--flag value` pairs of an args list. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

const container = (d: K8sObject): any => d.spec.template.spec.containers[0];
const portNamed = (c: any, name: string): number => c.ports.find((p: any) => p.name === name).containerPort;
const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.skipIf(skip)('deploy/: manifests', () => {
  it.each([...OVERLAYS, 'bench'])('%s: every object validates against its API schema', (dir) => {
    const objs = kustomizeBuild(join(DEPLOY, dir));
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      const v = VALIDATORS[`${o.apiVersion}/${o.kind}`];
      expect(v, `${o.apiVersion} ${o.kind} has no validator here`).toBeDefined();
      expect(() => v!(o), `${o.kind} ${o.metadata.name}`).not.toThrow();
      if (dir !== 'overlays/fail-open' || o.kind !== 'Namespace') expect(o.metadata.namespace ?? 'eppkit').toBe('eppkit');
    }
  });

  it('the schemas would catch a broken manifest (a probe on a named port where gRPC needs a number, a pool without its EPP port)', () => {
    const objs = kustomizeBuild(join(DEPLOY, 'overlays/kind'));
    const d = structuredClone(find(objs, 'Deployment', 'eppkit-mock-epp'));
    container(d).livenessProbe.grpc.port = 'grpc';
    expect(() => VALIDATORS['apps/v1/Deployment']!(d)).toThrow(/port must be integer/);
    const pool = structuredClone(find(objs, 'InferencePool'));
    delete pool.spec.endpointPickerRef.port;
    expect(() => VALIDATORS['inference.networking.k8s.io/v1/InferencePool']!(pool)).toThrow(/port is required/);
    pool.spec.endpointPickerRef.port = { number: 9002 };
    pool.spec.extensionRef = { name: 'old-field' };
    expect(() => VALIDATORS['inference.networking.k8s.io/v1/InferencePool']!(pool)).toThrow(/extensionRef/);
  });

  it.each(OVERLAYS)('%s: the pool, its EPP, the route and the probes fit together', (dir) => {
    const objs = kustomizeBuild(join(DEPLOY, dir));
    const pool = find(objs, 'InferencePool');
    const echo = find(objs, 'Deployment', 'eppkit-echo');
    const mock = find(objs, 'Deployment', 'eppkit-mock-epp');
    // The pool selects the echo pods, on the port they listen on.
    expect(matches(pool.spec.selector.matchLabels, echo.spec.template.metadata.labels)).toBe(true);
    const echoArgs: string[] = container(echo).args;
    expect(flagValue(echoArgs, '--listen')).toBe(`0.0.0.0:${pool.spec.targetPorts[0].number}`);
    expect(portNamed(container(echo), 'http')).toBe(pool.spec.targetPorts[0].number);
    // Its Endpoint Picker is a Service of the mock, on the service port the pool names, as h2c.
    const eppSvc = find(objs, 'Service', pool.spec.endpointPickerRef.name);
    expect(matches(eppSvc.spec.selector, mock.spec.template.metadata.labels)).toBe(true);
    const grpcPort = eppSvc.spec.ports.find((p: any) => p.port === pool.spec.endpointPickerRef.port.number);
    expect(grpcPort?.appProtocol).toBe('http2');
    const mc = container(mock);
    const args: string[] = mc.args;
    expect(grpcPort.targetPort).toBe('grpc');
    expect(String(portNamed(mc, 'grpc'))).toBe(flagValue(args, '--port'));
    expect(String(portNamed(mc, 'admin'))).toBe(flagValue(args, '--admin-port'));
    // Probes: gRPC health on the gRPC port for the EPP's health service names, /healthz on admin.
    expect(mc.livenessProbe.grpc).toEqual({ port: portNamed(mc, 'grpc'), service: 'liveness' });
    expect(mc.readinessProbe.grpc).toEqual({ port: portNamed(mc, 'grpc'), service: 'readiness' });
    expect(mc.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    // The mock listens on the pod address and finds the pool through a headless Service over the same pods.
    expect(flagValue(args, '--host')).toBe('0.0.0.0');
    const [dnsName, dnsPort] = flagValue(args, '--endpoints-dns')!.split(':');
    const headless = find(objs, 'Service', dnsName);
    expect(headless.spec.clusterIP).toBe('None');
    expect(matches(headless.spec.selector, echo.spec.template.metadata.labels)).toBe(true);
    expect(Number(dnsPort)).toBe(pool.spec.targetPorts[0].number);
    // Its config comes from the generated ConfigMap, mounted where --config points.
    const cmName = mock.spec.template.spec.volumes.find((v: any) => v.name === 'config').configMap.name;
    const cm = find(objs, 'ConfigMap', cmName);
    expect(cmName).toMatch(/^eppkit-mock-epp-config-[a-z0-9]+$/);
    expect(`${mc.volumeMounts[0].mountPath}/${Object.keys(cm.data!)[0]}`).toBe(flagValue(args, '--config'));
    // The route sends / of the Gateway to this pool.
    const route = find(objs, 'HTTPRoute');
    expect(route.spec.rules[0].backendRefs[0]).toMatchObject({ group: 'inference.networking.k8s.io', kind: 'InferencePool', name: pool.metadata.name });
    expect(pool.spec.endpointPickerRef.failureMode).toBe(dir === 'overlays/fail-open' ? 'FailOpen' : 'FailClose');
  });

  it('bbr: a second mock in the BBR role, its Service h2c on the port it listens on, probed like the EPP', () => {
    const objs = kustomizeBuild(join(DEPLOY, 'overlays/bbr'));
    const d = find(objs, 'Deployment', 'eppkit-mock-bbr');
    const c = container(d);
    expect(flagValue(c.args, '--role')).toBe('bbr');
    const svc = find(objs, 'Service', 'eppkit-mock-bbr');
    expect(matches(svc.spec.selector, d.spec.template.metadata.labels)).toBe(true);
    const grpcPort = svc.spec.ports.find((p: any) => p.name === 'grpc');
    expect(grpcPort).toMatchObject({ targetPort: 'grpc', appProtocol: 'http2' });
    expect(String(portNamed(c, 'grpc'))).toBe(flagValue(c.args, '--port'));
    expect(String(portNamed(c, 'admin'))).toBe(flagValue(c.args, '--admin-port'));
    expect(c.livenessProbe.grpc).toEqual({ port: portNamed(c, 'grpc'), service: 'liveness' });
    expect(c.readinessProbe.grpc).toEqual({ port: portNamed(c, 'grpc'), service: 'readiness' });
    // The EPP of the pool is still the EPP-role mock.
    expect(find(objs, 'InferencePool').spec.endpointPickerRef.name).toBe('eppkit-mock-epp');
  });

  it('images: the kind overlay uses what `eppkit build images` makes and never pulls; registry renames it', () => {
    const tags = IMAGES.map((i) => i.tag);
    for (const d of kustomizeBuild(join(DEPLOY, 'overlays/kind')).filter((o) => o.kind === 'Deployment')) {
      const c = container(d);
      expect(c.image).toBe('eppkit/node:latest');
      expect(tags).toContain(c.image.split(':')[0]);
      expect(c.imagePullPolicy).toBe('Never');
    }
    for (const d of kustomizeBuild(join(DEPLOY, 'overlays/registry')).filter((o) => o.kind === 'Deployment')) {
      expect(container(d).image).toBe('registry.example.com/eppkit/node:0.1.0');
    }
  });

  it('bench: an Indexed Job whose N pods each run one shard of N, with options bench accepts', () => {
    const job = find(kustomizeBuild(join(DEPLOY, 'bench')), 'Job', 'eppkit-bench');
    expect(job.spec.completionMode).toBe('Indexed');
    const c = job.spec.template.spec.containers[0];
    expect(c.command).toEqual(['eppkit']);
    expect(c.args[0]).toBe('bench');
    const shard = flagValue(c.args, '--shard')!;
    expect(shard).toBe(`$(JOB_COMPLETION_INDEX)/${job.spec.completions}`);
    expect(job.spec.parallelism).toBe(job.spec.completions);
    expect(c.env.find((e: any) => e.name === 'JOB_COMPLETION_INDEX').valueFrom.fieldRef.fieldPath).toBe("metadata.annotations['batch.kubernetes.io/job-completion-index']");
    expect(c.args).toContain('--json');
    // Every shard's options are valid bench options (what the pod would get for each index).
    for (let i = 0; i < job.spec.completions; i++) {
      const o = parseBenchOptions(
        flagsToOptions({
          url: flagValue(c.args, '--url'),
          shard: shard.replace('$(JOB_COMPLETION_INDEX)', String(i)),
          connections: flagValue(c.args, '--connections'),
          duration: flagValue(c.args, '--duration'),
          'body-bytes': flagValue(c.args, '--body-bytes'),
        }),
      );
      expect(o.shard).toEqual({ index: i, count: job.spec.completions });
    }
  });
});
