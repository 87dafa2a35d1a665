/**
 * The control API's JSON bodies (shared/spec/operations.md), shared by spooky-control's HTTP
 * server and the `spooky` CLI so the two cannot drift. Times are ISO-8601 strings.
 */
import type { ConfigIssue } from '../../model/config/load.js';

export type { ConfigIssue };

/** GET /health (open). */
export interface HealthBody {
  status: 'ok';
  uptime_ms: number;
  version: string;
}

/** GET /ready (open): 200 when ready, 503 otherwise. */
export interface ReadyBody {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reasons: string[];
}

/** Every error response: 400, 401, 404, 405, 409, 413, 422, 500. */
export interface ErrorBody {
  error: string;
  /** 422: every validation error. */
  errors?: ConfigIssue[];
  /** 409: what the data planes said. */
  dataplanes?: DataPlaneOutcome[];
}

/** GET /v1/config. */
export interface AppliedConfigBody {
  version: number;
  sha256: string;
  applied_at: string;
  applied_by: string;
  /** The applied YAML with secrets (auth_token values) replaced by "<redacted>". */
  yaml: string;
}

/** POST /v1/config/validate: 200 whether valid or not (ok tells). */
export interface ValidateBody {
  ok: boolean;
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
  /** Unified diff of the YAML against the applied config ('' when identical or none applied). */
  diff: string;
  /**
   * The same text as the applied config, but a file it names changed since (a certificate
   * renewed in place): an apply would push it as a new version.
   */
  files_changed?: boolean;
  /** One-line summary as `spooky validate` prints it (when ok). */
  summary?: string;
}

/** One data plane's answer to a pushed snapshot. */
export interface DataPlaneOutcome {
  node_id: string;
  /** not_connected: a certified node (control.listen) seen before that is away; it gets the version when it returns. */
  result: 'ack' | 'nack' | 'timeout' | 'not_connected';
  /** NACK message. */
  error?: string;
  restart_required?: boolean;
}

/** POST /v1/config and /v1/config/rollback: 200 when every connected data plane ACKed. */
export interface ApplyBody {
  version: number;
  /** True when the YAML equals the applied config: nothing was pushed. */
  unchanged: boolean;
  dataplanes: DataPlaneOutcome[];
}

/** GET /v1/backends. */
export interface BackendInfo {
  id: string;
  pool: string;
  origin: string;
  state: 'healthy' | 'unhealthy' | 'unknown';
  since: string;
  last_probe: { ok: boolean; status?: number; error?: string; latency_ms: number; at: string } | null;
  in_flight: number;
  drained: boolean;
}
export interface BackendsBody {
  backends: BackendInfo[];
}

/** POST /v1/backends/{id}/drain and /undrain. */
export interface DrainBody {
  id: string;
  drained: boolean;
}

/** GET /v1/dataplanes. */
export interface DataPlaneInfo {
  node_id: string;
  /** False for a certified node (control.listen) that was connected since start and is away. */
  connected: boolean;
  /** `unix` (control.socket) or the TCP peer address of a remote data plane. */
  peer: string;
  pid: number;
  build: string;
  connected_at: string;
  /** When a node that is not connected went away. */
  disconnected_at: string | null;
  served_version: number;
  last_ack: { version: number; at: string } | null;
  last_nack: { version: number; at: string; error: string } | null;
  active_connections: number;
  requests_per_second: number;
  /** Adaptive admission and brownout as last reported (null before the first stats). */
  overload: OverloadInfo | null;
}
export interface OverloadInfo {
  adaptive_admission: { enabled: boolean; limit: number; in_flight: number; shed_total: number };
  brownout: { enabled: boolean; active: boolean; shed_total: number };
}
export interface DataPlanesBody {
  /** The control plane's current (applied) snapshot version. */
  current_version: number;
  dataplanes: DataPlaneInfo[];
}
