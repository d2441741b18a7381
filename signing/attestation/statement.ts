/**
 * The release attestation's payload: an in-toto Statement v1
 * (https://in-toto.io/Statement/v1) whose subject is the kit tarball (file
 * name and sha256) and whose predicate is SLSA provenance v1
 * (https://slsa.dev/provenance/v1). The layout of Stella's predicate (build
 * type, parameters, one resolved dependency per feed) is described in
 * docs/trust.md; `kitProvenanceStatement` writes it and `readKitStatement`
 * reads it back, checking the layers in turn: statement type, subject digest,
 * predicate type.
 */
import { OukError } from '../../lib/errors.ts';

export const INTOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
/** What `buildType` says: a kit built by `stella ouk build` (docs/trust.md describes its parameters). */
export const KIT_BUILD_TYPE = 'https://stella-ouk.invalid/attestation/ouk-build/v1';
/** `runDetails.builder.id`: the `.invalid` host can never name somebody's server. */
export const KIT_BUILDER_ID = 'https://stella-ouk.invalid/builder/stella-ouk';
/** How a feed's input digest is computed (also stated in the predicate itself). */
export const FEED_DIGEST_RULE =
  'sha256 over one line "<path> <sha256 of the file>\\n" per input file of the feed, path relative to the feed directory with "/" separators, lines in byte order of the paths (LC_ALL=C sort)';

export interface ResourceDescriptor {
  name?: string;
  uri?: string;
  digest?: Record<string, string>;
  annotations?: Record<string, unknown>;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata?: Record<string, unknown>;
    byproducts?: ResourceDescriptor[];
  };
}

export interface Statement {
  _type: string;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate: SlsaProvenanceV1;
}

/** One feed the kit was built from, as attested. */
export interface AttestedFeed {
  name: string;
  /** The upstream the feed mirrors, when known. */
  uri: string | null;
  /** sha256 of its input files (FEED_DIGEST_RULE). */
  sha256: string | null;
  snapshot: string | null;
  records: number | null;
  files: number | null;
}

export interface KitProvenanceInput {
  /** The tarball's file name and sha256 hex: the statement's subject. */
  fileName: string;
  sha256: string;
  builderVersion: string;
  /** Build parameters: version, kind, base (a delta), and the rest the build was asked for. */
  externalParameters: { version: string; kind: string; base?: { version: string; dbDigest: string } } & Record<string, unknown>;
  internalParameters: Record<string, unknown>;
  feeds: { name: string; uri: string | null; sha256: string; files: number; snapshot: string | null; records: number; skipped: number }[];
  byproducts: ResourceDescriptor[];
}

export function kitProvenanceStatement(p: KitProvenanceInput): Statement {
  return {
    _type: STATEMENT_V1,
    subject: [{ name: p.fileName, digest: { sha256: p.sha256 } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: KIT_BUILD_TYPE,
        externalParameters: p.externalParameters,
        internalParameters: { ...p.internalParameters, feedDigest: FEED_DIGEST_RULE },
        resolvedDependencies: p.feeds.map((f) => ({
          name: f.name,
          ...(f.uri ? { uri: f.uri } : {}),
          digest: { sha256: f.sha256 },
          annotations: { snapshot: f.snapshot, records: f.records, skipped: f.skipped, files: f.files },
        })),
      },
      runDetails: { builder: { id: KIT_BUILDER_ID, version: { 'stella-ouk': p.builderVersion } }, byproducts: p.byproducts },
    },
  };
}

export interface KitStatement {
  statement: Statement;
  /** The subject entry that names this tarball. */
  subjectName: string;
  builder: { id: string; version: string | null };
  parameters: Record<string, unknown>;
  feeds: AttestedFeed[];
}

function mismatch(source: string, why: string): OukError {
  return new OukError('ATTESTATION_MISMATCH', `${source} does not attest this kit: ${why} — do not use the kit; re-download it with the .intoto.json the publisher wrote for it`);
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The statement in `payload`, checked against the tarball's sha256 (see the header). Call only once its signatures hold. */
export function readKitStatement(payload: Buffer, sha256: string, source: string): KitStatement {
  let data: unknown;
  try {
    data = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw mismatch(source, `its payload is not JSON (${(e as Error).message})`);
  }
  if (!isObject(data) || data._type !== STATEMENT_V1) throw mismatch(source, `its payload is not an in-toto Statement v1 (_type ${isObject(data) ? JSON.stringify(data._type) : 'missing'})`);
  const subjects = Array.isArray(data.subject) ? data.subject.filter(isObject) : [];
  if (subjects.length === 0) throw mismatch(source, 'the statement has no subject');
  const digests = subjects.map((s) => (isObject(s.digest) ? str(s.digest.sha256) : null));
  const at = digests.findIndex((d) => d === sha256);
  if (at < 0) {
    throw mismatch(source, `its subject is sha256 ${digests.filter(Boolean).join(', ') || '(none)'}, this tarball is sha256 ${sha256}`);
  }
  if (data.predicateType !== SLSA_PROVENANCE_V1) throw mismatch(source, `its predicate is ${JSON.stringify(data.predicateType)}, not SLSA provenance v1 (${SLSA_PROVENANCE_V1})`);
  const predicate = isObject(data.predicate) ? data.predicate : {};
  const def = isObject(predicate.buildDefinition) ? predicate.buildDefinition : {};
  const run = isObject(predicate.runDetails) ? predicate.runDetails : {};
  const builder = isObject(run.builder) ? run.builder : {};
  const deps = Array.isArray(def.resolvedDependencies) ? def.resolvedDependencies.filter(isObject) : [];
  const feeds = deps.map((d): AttestedFeed => {
    const a = isObject(d.annotations) ? d.annotations : {};
    return {
      name: str(d.name) ?? '(unnamed)',
      uri: str(d.uri),
      sha256: isObject(d.digest) ? str(d.digest.sha256) : null,
      snapshot: str(a.snapshot),
      records: num(a.records),
      files: num(a.files),
    };
  });
  const version = isObject(builder.version) ? Object.entries(builder.version).map(([k, v]) => `${k} ${String(v)}`).join(', ') : null;
  return {
    statement: data as unknown as Statement,
    subjectName: str(subjects[at]!.name) ?? '(unnamed)',
    builder: { id: str(builder.id) ?? '(none)', version },
    parameters: isObject(def.externalParameters) ? def.externalParameters : {},
    feeds,
  };
}
