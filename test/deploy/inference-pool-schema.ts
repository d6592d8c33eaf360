// InferencePool (inference.networking.k8s.io/v1) as its API reference documents it: no npm
// package models this CRD, so its fields and validations are written out here (strict: an
// unknown field is an error, as `kubectl apply --validate=strict` makes it).
import { z } from 'zod';

const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelKey = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const port = z.strictObject({ number: z.number().int().min(1).max(65535) });

export const inferencePoolSchema = z.strictObject({
  apiVersion: z.literal('inference.networking.k8s.io/v1'),
  kind: z.literal('InferencePool'),
  metadata: z.looseObject({ name: z.string().min(1).max(253).regex(dns1123Subdomain), namespace: z.string().optional() }),
  spec: z.strictObject({
    selector: z.strictObject({
      matchLabels: z
        .record(z.string().max(253).regex(labelKey), z.string().max(63).regex(labelValue))
        .refine((m) => Object.keys(m).length >= 1 && Object.keys(m).length <= 64, 'matchLabels: 1 to 64 labels'),
    }),
    targetPorts: z.array(port).min(1).max(1),
    endpointPickerRef: z.strictObject({
      group: z.string().max(253).regex(/^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/).optional(),
      kind: z.string().min(1).max(63).regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/).optional(),
      name: z.string().min(1).max(253),
      port: port.optional(),
      failureMode: z.enum(['FailOpen', 'FailClose']).optional(),
    })
    .refine((r) => (r.kind ?? 'Service') !== 'Service' || r.port !== undefined, { message: 'port is required when the Endpoint Picker is a Service', path: ['port'] }),
  }),
});
export type InferencePool = z.output<typeof inferencePoolSchema>;
