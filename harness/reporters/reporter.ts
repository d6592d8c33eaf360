// Reporters are an interface of optional hooks (as vitest's): each sees the run start, each
// scenario start and end, and the whole report at the end.
import type { RunReport, ScenarioResult } from '../runner/results.ts';

export interface RunStartInfo {
  /** scenario × data plane pairs that will be run (or skipped). */
  total: number;
  dataPlanes: string[];
  scenarios: string[];
  reportDir: string;
}

export interface ScenarioStartInfo {
  name: string;
  dataPlane: string;
}

export interface Reporter {
  onRunStart?(info: RunStartInfo): void | Promise<void>;
  onScenarioStart?(info: ScenarioStartInfo): void | Promise<void>;
  onScenarioEnd?(result: ScenarioResult): void | Promise<void>;
  onRunEnd?(report: RunReport): void | Promise<void>;
}
