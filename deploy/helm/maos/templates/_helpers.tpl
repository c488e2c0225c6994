{{/* Shared names, labels and mode switches of the MAOS chart. */}}

{{- define "maos.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "maos.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "maos.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "maos.selectorLabels" -}}
app.kubernetes.io/name: {{ include "maos.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "maos.labels" -}}
helm.sh/chart: {{ include "maos.chart" . }}
{{ include "maos.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: maos
{{- end -}}

{{- define "maos.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "maos.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "maos.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* "true" in PostgreSQL mode, "" in SQLite mode; fails on any other mode. */}}
{{- define "maos.isPostgres" -}}
{{- if eq .Values.database.mode "postgres" -}}
true
{{- else if ne .Values.database.mode "sqlite" -}}
{{- fail (printf "database.mode must be sqlite or postgres, not %q" .Values.database.mode) -}}
{{- end -}}
{{- end -}}

{{/* The fewest replicas PostgreSQL mode runs: KEDA's floor, the HPA's floor or replicaCount. */}}
{{- define "maos.minReplicas" -}}
{{- if .Values.keda.enabled -}}
{{- .Values.keda.minReplicaCount -}}
{{- else if .Values.autoscaling.enabled -}}
{{- .Values.autoscaling.minReplicas -}}
{{- else -}}
{{- .Values.replicaCount -}}
{{- end -}}
{{- end -}}

{{/*
"true" when the PodDisruptionBudget is rendered: PostgreSQL mode, enabled, and more replicas than
minAvailable at the floor. With minAvailable at or above the replica floor no pod may ever be
evicted, so a node drain (cluster upgrade) would wait forever. A percentage counts as the pods it
makes at the floor, rounded up as Kubernetes rounds it (50% of 1 pod is 1).
*/}}
{{- define "maos.pdbEnabled" -}}
{{- if and (include "maos.isPostgres" .) .Values.podDisruptionBudget.enabled -}}
{{- $floor := int (include "maos.minReplicas" .) -}}
{{- $min := .Values.podDisruptionBudget.minAvailable -}}
{{- if contains "%" (toString $min) -}}
{{- $min = div (add (mul (int (trimSuffix "%" (toString $min))) $floor) 99) 100 -}}
{{- end -}}
{{- if gt $floor (int $min) -}}
true
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" when the server serves HTTPS on the API port (tls.secretName), "" for plain HTTP. */}}
{{- define "maos.tlsEnabled" -}}
{{- if .Values.tls.secretName -}}
true
{{- end -}}
{{- end -}}

{{/* Scheme of the API port (the probes; NOTES in lower case): HTTPS with tls.secretName, else HTTP. */}}
{{- define "maos.apiScheme" -}}
{{- if include "maos.tlsEnabled" . -}}
HTTPS
{{- else -}}
HTTP
{{- end -}}
{{- end -}}

{{/*
The Service the metrics port is on, and so the `service` label prometheus-operator gives the scraped
series: the API's Service when it is a ClusterIP, else one of its own. The metrics listener answers
without credentials (metrics.public or not), so it is never put on a NodePort or a LoadBalancer,
which would serve it outside the cluster. 63 characters at most, as a Service name.
*/}}
{{- define "maos.metricsServiceName" -}}
{{- if eq .Values.service.type "ClusterIP" -}}
{{- include "maos.fullname" . -}}
{{- else -}}
{{- printf "%s-metrics" (include "maos.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret the pods read environment variables from. */}}
{{- define "maos.secretName" -}}
{{- default (include "maos.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{/* The migration Job: its name is the job-name label of its pods, so 63 characters at most. */}}
{{- define "maos.migrationJobName" -}}
{{- printf "%s-migrate" (include "maos.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{- define "maos.pvcName" -}}
{{- default (printf "%s-data" (include "maos.fullname" .)) .Values.database.sqlite.persistence.existingClaim -}}
{{- end -}}

{{/*
The MAOS config file: .Values.config plus the auth section built from .Values.auth. The server's
ConfigMap and the migration Job's hook copy of it (the Job runs before the ConfigMap exists).
*/}}
{{- define "maos.configFile" -}}
{{- with .Values.config }}{{ toYaml . }}{{ "\n" }}{{ end -}}
auth:
  mode: {{ .Values.auth.mode }}
  {{- if .Values.auth.oidc.issuer }}
  oidc:
    issuer: {{ .Values.auth.oidc.issuer | quote }}
    {{- with .Values.auth.oidc.audience }}
    audience: {{ . | quote }}
    {{- end }}
    rolesClaim: {{ .Values.auth.oidc.rolesClaim | quote }}
    tenantClaim: {{ .Values.auth.oidc.tenantClaim | quote }}
    {{- with .Values.auth.oidc.roleMapping }}
    roleMapping: {{ . | toJson }}
    {{- end }}
    {{- with .Values.auth.oidc.defaultTenant }}
    defaultTenant: {{ . | quote }}
    {{- end }}
    {{- with .Values.auth.oidc.principalClaim }}
    principalClaim: {{ . | quote }}
    {{- end }}
    {{- with .Values.auth.oidc.requiredClaims }}
    requiredClaims: {{ . | toJson }}
    {{- end }}
    {{- with .Values.auth.oidc.algorithms }}
    algorithms: {{ . | toJson }}
    {{- end }}
    {{- if .Values.auth.oidc.console.clientId }}
    console:
      clientId: {{ .Values.auth.oidc.console.clientId | quote }}
      scopes: {{ .Values.auth.oidc.console.scopes | toJson }}
      audienceParameter: {{ .Values.auth.oidc.console.audienceParameter | quote }}
      {{- with .Values.auth.oidc.console.tokenEndpointOrigin }}
      tokenEndpointOrigin: {{ . | quote }}
      {{- end }}
      {{- with .Values.auth.oidc.console.displayName }}
      displayName: {{ . | quote }}
      {{- end }}
    {{- end }}
  {{- end }}
{{- end -}}

{{/*
Fails when a value of `config` is a secret: the config file is a ConfigMap, which everyone who may
read ConfigMaps in the namespace reads (the built-in `view` role may). Secret is what `maos config
print` redacts: a string under a key named like one (apiKey, signingKey, kekRing, *secret*,
*password*, *token*…), every value of a provider's `headers` and of a runner's `env`, a URL with
a password (as a URL parser reads it: up to the last `@`, also without a user name), and a URL with
a query parameter named like a secret (maos.urlQuerySecret; print redacts every query value).
`*_FILE` keys name files and pass when they are absolute paths (maos.refuseFileKeyNotPath), and so
do `required` and `none`: the values of
llm.approval.tenants, whose keys are tenant ids (`token-team`). An entry of runnerAccess.tenants,
llm.approval.tenants, auth.oidc.roleMapping, runners, providers, llm.roles, llm.prices or
llm.budgets.tenants is judged by the map's key, not by its tenant id, IdP group or name (`token-team`,
`env`, `secret-admins`, `headers`), as `maos config print` does. The message names the MAOS_* variable that sets the value from
secretEnv or existingSecret instead. Called with (dict "path" "config" "env" "" "key" "" "value"
.Values.config "inSecretMap" false).
*/}}
{{- define "maos.refuseSecretsInConfig" -}}
{{- if kindIs "map" .value -}}
{{- range $key, $child := .value -}}
{{- if hasSuffix "_FILE" $key -}}
{{- include "maos.refuseFileKeyNotPath" (dict "where" (printf "%s.%s" $.path $key) "value" $child) -}}
{{- else -}}
{{- /* The variable's word for the key: a runner's env keeps its name, a header `-` as `_`. */ -}}
{{- $word := upper (regexReplaceAll "([a-z0-9])([A-Z])" $key "${1}_${2}") -}}
{{- if eq $.key "env" }}{{ $word = $key }}{{ end -}}
{{- if eq $.key "headers" }}{{ $word = upper (replace "-" "_" $key) }}{{ end -}}
{{- $env := ternary (printf "MAOS_%s" $word) (printf "%s__%s" $.env $word) (eq $.env "") -}}
{{- /* An entry of a map keyed by tenant ids, IdP groups or the operator's names of runners,
providers and roles (`token-team`, `env`, `secret-admins`, `headers`) is judged by the map's own
key, as `maos config print` does (src/config/secrets-in-config.ts): its values are runner names,
`required`/`none`, role names or a runner's, provider's or role's settings, no secrets by that name. */ -}}
{{- $entry := has $.path (list "config.runnerAccess.tenants" "config.llm.approval.tenants" "config.auth.oidc.roleMapping" "config.runners" "config.providers" "config.llm.roles" "config.llm.prices" "config.llm.budgets.tenants") -}}
{{- $nameKey := ternary $.key $key $entry -}}
{{- include "maos.refuseSecretsInConfig" (dict "path" (printf "%s.%s" $.path $key) "env" $env "key" $nameKey "value" $child "inSecretMap" (or $.inSecretMap (and (not $entry) (has $key (list "headers" "env"))))) -}}
{{- end -}}
{{- end -}}
{{- else if kindIs "slice" .value -}}
{{- range $i, $item := .value -}}
{{- include "maos.refuseSecretsInConfig" (dict "path" (printf "%s[%d]" $.path $i) "env" $.env "key" $.key "value" $item "inSecretMap" $.inSecretMap) -}}
{{- end -}}
{{- /* typeIs, not kindIs: helm 3 reads a --set number as a json.Number, whose kind is string. */ -}}
{{- else if and (typeIs "string" .value) .value -}}
{{- $hint := printf "would be stored in the chart's ConfigMap, which anyone who may read ConfigMaps in the namespace can read: set %s in secretEnv or existingSecret instead, or %s_FILE to a file mounted with extraVolumes" .env .path -}}
{{- if .inSecretMap -}}
{{- fail (printf "%s is a secret (MAOS treats every value of a provider's headers and of a runner's env as one) and %s" .path $hint) -}}
{{- else if and (regexMatch (printf "(?i)%s" (include "maos.secretKeyPattern" .)) .key) (not (has .value (list "required" "none"))) -}}
{{- fail (printf "%s is a secret and %s" .path $hint) -}}
{{- else if include "maos.urlPassword" .value -}}
{{- fail (printf "%s holds a password (user:password@ in the URL) and %s" .path $hint) -}}
{{- else if include "maos.urlQuerySecret" .value -}}
{{- fail (printf "%s holds a secret in its query (?key=, ?api-key=, ?token= …), sent with every request, and %s" .path $hint) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Fails when a `*_FILE` config key or MAOS_* variable is not an absolute path. The server reads the
file it names, so a value that is not a path is most likely the secret itself, put where a path
goes: it would pass the secret checks above (a `*_FILE` value names a file) and sit in the
ConfigMap or the Deployment, and the server would name it in its `cannot read` error. A relative
path would be read from the server's working directory, not a mounted volume. The message does not
repeat the value. Called with (dict "where" "config.audit.signingKey_FILE" "value" <the value>).
*/}}
{{- define "maos.refuseFileKeyNotPath" -}}
{{- if not (and (typeIs "string" .value) (hasPrefix "/" .value)) -}}
{{- fail (printf "%s must be the absolute path of a mounted file (extraVolumes, e.g. /run/secrets/maos/<name>), not the secret itself (not shown here): set the secret in secretEnv or existingSecret under the variable without _FILE instead" .where) -}}
{{- end -}}
{{- end -}}

{{/*
Names like a secret (matched case-insensitively): the server's SECRET_KEY_PATTERN
(src/config/schema.ts). The one copy of it in the chart, for config keys, extraEnv variables and
URL query parameters.
*/}}
{{- define "maos.secretKeyPattern" -}}
(secret|password|passphrase|token|apikey|api_key|privatekey|signingkey|kek)
{{- end -}}

{{/*
Non-empty when the string holds a URL password: user:password@ anywhere, and as a URL parser reads
a URL (the userinfo runs to the last `@` of the authority, also without a user name).
*/}}
{{- define "maos.urlPassword" -}}
{{- if or (regexMatch `//[^:/@\s]+:[^@\s]+@` .) (regexMatch `(?i)^[a-z][a-z0-9+.-]*://[^/\\?#\s:]*:[^/\\?#\s]+@` .) -}}
true
{{- end -}}
{{- end -}}

{{/*
Non-empty when the string is a URL whose query has a parameter named like a secret (by
maos.secretKeyPattern, `api-key`, `key` or `sig`): a gateway's `?key=…`, Azure's `api-key=…`,
a signed URL's `sig=…`. Other parameters (`?api-version=…`) pass.
*/}}
{{- define "maos.urlQuerySecret" -}}
{{- if regexMatch (printf `(?i)^[a-z][a-z0-9+.-]*://[^?#\s]*\?([^#\s]*&)?([^=&#\s]*(%s|api-key)[^=&#\s]*|key|sig)=[^&#\s]` (include "maos.secretKeyPattern" .)) . -}}
true
{{- end -}}
{{- end -}}

{{/*
Fails when an extraEnv entry gives a secret as a plain `value`: it would be part of the Deployment,
which everyone who may read Deployments or Pods in the namespace reads. Secret by the rule of
maos.refuseSecretsInConfig, applied to the MAOS_* variable's last word (`…__API_KEY`), unless the
value reads as a number, boolean or JSON, as the server reads it, or is `required` or `none` (see
above); any value of a runner's env or a provider's headers; a URL with a password or with a secret
in its query (maos.urlQuerySecret); and the OTLP
exporter's headers (API keys of tracing vendors). `*_FILE` variables name files and pass when a
`value` of theirs is an absolute path (maos.refuseFileKeyNotPath). Called with an extraEnv entry.
*/}}
{{- define "maos.refuseSecretInExtraEnv" -}}
{{- if and (hasPrefix "MAOS_" .name) (hasSuffix "_FILE" .name) (hasKey . "value") -}}
{{- include "maos.refuseFileKeyNotPath" (dict "where" (printf "extraEnv %s" .name) "value" .value) -}}
{{- end -}}
{{- if and (typeIs "string" .value) .value (not (hasSuffix "_FILE" .name)) -}}
{{- $word := replace "_" "" (regexReplaceAll "^.*__" .name "") -}}
{{- $maos := and (hasPrefix "MAOS_" .name) (or (regexMatch "__(ENV|HEADERS)(__|$)" .name) (and (regexMatch (printf "(?i)%s" (include "maos.secretKeyPattern" .)) $word) (not (regexMatch `^\s*(-?[0-9]+(\.[0-9]+)?|true|false|null|\[.*\]|\{.*\}|required|none)\s*$` .value)))) -}}
{{- if or $maos (include "maos.urlPassword" .value) (include "maos.urlQuerySecret" .value) (regexMatch "^OTEL_EXPORTER_OTLP(_TRACES)?_HEADERS$" .name) -}}
{{- fail (printf "extraEnv %s holds a secret as a plain value, which would be stored in the Deployment, readable by anyone who may read Deployments or Pods in the namespace: set it in secretEnv or existingSecret instead, or take it from a Secret with valueFrom.secretKeyRef" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Non-empty when the pods get an audit signing key from the values: in existingSecret (assumed), in
secretEnv, or as a file named by config.audit.signingKey_FILE or a MAOS_AUDIT__SIGNING_KEY_FILE
variable (secretEnv, extraEnv). Without one each pod generates its own. (config.audit.signingKey
itself is refused: maos.refuseSecretsInConfig.)
*/}}
{{- define "maos.auditKeyConfigured" -}}
{{- $audit := default (dict) (index .Values.config "audit") -}}
{{- $names := list "MAOS_AUDIT__SIGNING_KEY" "MAOS_AUDIT__SIGNING_KEY_FILE" -}}
{{- if or .Values.existingSecret (hasKey $audit "signingKey_FILE") -}}
true
{{- end -}}
{{- range $names -}}
{{- if hasKey $.Values.secretEnv . }}true{{ end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if has .name $names }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
Non-empty when the audit checkpoint files go somewhere of the operator's choosing rather than the
pod's data volume: auditCheckpoints.persistence, config.audit.checkpointDir or a
MAOS_AUDIT__CHECKPOINT_DIR variable (extraEnv, secretEnv) naming a mounted extraVolume.
*/}}
{{- define "maos.checkpointDirConfigured" -}}
{{- if or .Values.auditCheckpoints.persistence.enabled (hasKey (default (dict) (index .Values.config "audit")) "checkpointDir") (hasKey .Values.secretEnv "MAOS_AUDIT__CHECKPOINT_DIR") -}}
true
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if eq .name "MAOS_AUDIT__CHECKPOINT_DIR" }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
Fails, in PostgreSQL mode, when a start could outlast what Kubernetes gives it: `maos serve` and
`maos migrate` wait up to store.startupWaitMs for the database before they listen or migrate (the
server's default: 60 s), so the startup probe (failureThreshold × periodSeconds) and the migration
Job's activeDeadlineSeconds must be longer, or the pod is restarted, the Job ended, while it still
waits. The wait is read where the pods get it: an extraEnv value (env wins over envFrom), secretEnv,
config.store.startupWaitMs (one in existingSecret is not visible here).
*/}}
{{- define "maos.refuseStartShorterThanDatabaseWait" -}}
{{- if include "maos.isPostgres" . -}}
{{- $store := default (dict) (index .Values.config "store") -}}
{{- $wait := 60000 -}}
{{- $from := "config.store.startupWaitMs, the server's default" -}}
{{- if hasKey $store "startupWaitMs" }}{{ $wait = $store.startupWaitMs }}{{ $from = "config.store.startupWaitMs" }}{{ end -}}
{{- if hasKey .Values.secretEnv "MAOS_STORE__STARTUP_WAIT_MS" }}{{ $wait = get .Values.secretEnv "MAOS_STORE__STARTUP_WAIT_MS" }}{{ $from = "secretEnv.MAOS_STORE__STARTUP_WAIT_MS" }}{{ end -}}
{{- range .Values.extraEnv -}}
{{- if and (eq .name "MAOS_STORE__STARTUP_WAIT_MS") (hasKey . "value") }}{{ $wait = .value }}{{ $from = "extraEnv MAOS_STORE__STARTUP_WAIT_MS" }}{{ end -}}
{{- end -}}
{{- $wait = int (include "maos.wholeNumberSetting" (dict "where" (trimSuffix ", the server's default" $from) "value" $wait)) -}}
{{- $probe := .Values.probes.startup -}}
{{- if le (mul (int $probe.failureThreshold) (int $probe.periodSeconds) 1000) $wait -}}
{{- fail (printf "probes.startup gives a pod %d s to start (failureThreshold %d × periodSeconds %d), not more than the %d ms it may wait for PostgreSQL before it listens (%s): the kubelet would restart it while it still waits. Raise probes.startup.failureThreshold to at least %d, or lower the wait" (mul (int $probe.failureThreshold) (int $probe.periodSeconds)) (int $probe.failureThreshold) (int $probe.periodSeconds) $wait $from (add (div $wait (mul (int $probe.periodSeconds) 1000)) 1)) -}}
{{- end -}}
{{- if and .Values.migration.enabled (le (mul (int .Values.migration.activeDeadlineSeconds) 1000) $wait) -}}
{{- fail (printf "migration.activeDeadlineSeconds (%d) is not more than the %d ms maos migrate may wait for PostgreSQL (%s): the Job would be ended (DeadlineExceeded) while it still waits. Raise migration.activeDeadlineSeconds above %d, or lower the wait" (int .Values.migration.activeDeadlineSeconds) $wait $from (div $wait 1000)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Fails, in SQLite mode, when the pod would get a database URL other than a `sqlite:` path from the
values: `maos serve` runs on whatever store.url its environment names, so the one pod would quietly
run on PostgreSQL while the chart renders SQLite mode (one replica, Recreate, a PVC for a database
nobody uses). secretEnv (the chart's Secret) and extraEnv are checked here, the value never repeated,
and database.postgres.url, which SQLite mode ignores (the pod would run on SQLite, not on it); what the
chart cannot read (existingSecret, a MAOS_STORE__URL_FILE naming a mounted file, which may hold a
sqlite: path as the server reads it) is checked in the pod by the check-store init container
(maos.checkStoreScript). A sqlite: path belongs in config.store.url.
*/}}
{{- define "maos.refuseDatabaseUrlInSqliteMode" -}}
{{- if not (include "maos.isPostgres" .) -}}
{{- $fix := "set database.mode=postgres with the URL in database.postgres.url or as MAOS_STORE__URL in existingSecret (the pods then share that database and scale out), or remove it to keep the SQLite file on the PVC; a sqlite: path goes in config.store.url" -}}
{{- $why := "but database.mode is sqlite: the one pod would run on that database while the chart renders SQLite mode (one replica, Recreate, a PVC for the database)" -}}
{{- if .Values.database.postgres.url -}}
{{- fail "database.postgres.url is set but database.mode is sqlite: the chart would not pass the URL on, and the one pod would run on a SQLite file on the PVC instead of that database. Set database.mode=postgres to run on it, or remove database.postgres.url" -}}
{{- end -}}
{{- if not .Values.existingSecret -}}
{{- if and (hasKey .Values.secretEnv "MAOS_STORE__URL") (not (hasPrefix "sqlite:" (toString (get .Values.secretEnv "MAOS_STORE__URL")))) -}}
{{- fail (printf "secretEnv.MAOS_STORE__URL is a database URL other than a sqlite: path (not shown) %s: %s" $why $fix) -}}
{{- end -}}
{{- end -}}
{{- range .Values.extraEnv -}}
{{- if and (eq .name "MAOS_STORE__URL") (not (and (hasKey . "value") (hasPrefix "sqlite:" (toString .value)))) -}}
{{- fail (printf "extraEnv %s gives the database URL (a value other than a sqlite: path, or one the chart cannot see) %s: %s" .name $why $fix) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Whether the pod needs the check-store init container: SQLite mode with a database URL the chart cannot
read, in existingSecret or in a file named by MAOS_STORE__URL_FILE (secretEnv or extraEnv). "true" or "".
*/}}
{{- define "maos.checkStore" -}}
{{- if not (include "maos.isPostgres" .) -}}
{{- $file := false -}}
{{- range .Values.extraEnv -}}
{{- if eq .name "MAOS_STORE__URL_FILE" }}{{ $file = true }}{{ end -}}
{{- end -}}
{{- if or .Values.existingSecret $file (hasKey .Values.secretEnv "MAOS_STORE__URL_FILE") -}}true{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The script of the check-store init container (see maos.checkStore): loads the configuration as
`maos serve` does (env over envFrom over the config file, a _FILE variable read from its file) and
exits 1 when it names a database URL other than a sqlite: path, which the server would run on (see
maos.refuseDatabaseUrlInSqliteMode), naming the variable and where it came from but not the URL; or
when the configuration cannot be read, as the server could not. Run by `node -e` in /app.
*/}}
{{- define "maos.checkStoreScript" -}}
{{- $secret := ternary (printf "existingSecret %s" .Values.existingSecret) "secretEnv" (not (empty .Values.existingSecret)) -}}
{{- $sources := dict "MAOS_STORE__URL" $secret "MAOS_STORE__URL_FILE" $secret -}}
{{- range .Values.extraEnv -}}
{{- if or (eq .name "MAOS_STORE__URL") (eq .name "MAOS_STORE__URL_FILE") }}{{ $_ := set $sources .name "extraEnv" }}{{ end -}}
{{- end -}}
const sources = {{ $sources | toJson }};
import('./src/config/load.ts').then(({ loadConfig }) => {
  let url;
  try {
    url = loadConfig().store.url;
  } catch (error) {
    console.error('maos chart: the server could not start on this configuration: ' + [error.message, ...(Array.isArray(error.details) ? error.details : [])].join('\n  '));
    process.exit(1);
  }
  if (url === undefined || url.startsWith('sqlite:')) return;
  const name = process.env.MAOS_STORE__URL_FILE !== undefined ? 'MAOS_STORE__URL_FILE' : process.env.MAOS_STORE__URL !== undefined ? 'MAOS_STORE__URL' : '';
  const given = name ? name + ' in ' + sources[name] : 'store.url in the config file';
  console.error('maos chart: ' + given + ' gives a database URL other than a sqlite: path (not shown), but database.mode is sqlite: the one pod would run on that database while the chart renders SQLite mode (one replica, Recreate, a PVC for the database). Set database.mode=postgres to run on it (the pods then share it and scale out), or remove ' + (name || 'store.url') + ' to keep the SQLite file on the PVC.');
  process.exit(1);
});
{{- end -}}

{{/*
A secretEnv value as a quoted Secret string. helm reads a number of a values file as a float64, which
quote prints in exponent form from a million on (12345678901 as 1.2345678901e+10): a number is
written as JSON writes it, its digits as given.
*/}}
{{- define "maos.secretValue" -}}
{{- if kindIs "string" . -}}
{{- quote . -}}
{{- else -}}
{{- toJson . | quote -}}
{{- end -}}
{{- end -}}

{{/* The PVC of the audit checkpoint files (auditCheckpoints.persistence). */}}
{{- define "maos.auditCheckpointsClaim" -}}
{{- default (printf "%s-audit-checkpoints" (include "maos.fullname" .)) .Values.auditCheckpoints.persistence.existingClaim -}}
{{- end -}}

{{/* Environment shared by the server, the init container and the migration Job. */}}
{{- define "maos.env" -}}
- name: MAOS_CONFIG
  value: /etc/maos/config.yaml
- name: MAOS_DATA_DIR
  value: /data
- name: MAOS_HOST
  value: "0.0.0.0"
- name: MAOS_PORT
  value: {{ .Values.service.targetPort | quote }}
- name: MAOS_METRICS__PORT
  value: {{ .Values.service.metricsPort | quote }}
- name: MAOS_METRICS__HOST
  value: "0.0.0.0"
{{- if include "maos.isPostgres" . }}
{{- /* Named, not only read through envFrom: without the key the kubelet refuses to start the pod,
where the server would otherwise run on a SQLite file of its own in every pod. */}}
- name: MAOS_STORE__URL
  valueFrom:
    secretKeyRef:
      name: {{ include "maos.secretName" . }}
      key: MAOS_STORE__URL
{{- end }}
{{- end -}}

{{- /*
A whole-number setting the chart's checks read (shutdown seconds, the body limit, the start-up
wait), from where the pods get it: a text value (secretEnv, an extraEnv value, the config file) must
be digits, blanks around allowed, as MAOS reads a MAOS_* variable. Helm reads "60s", "1Mi" or "2.5"
as 0 (and "060" as octal), so a check would pass while `maos serve` refuses the value at start-up
(or, for a fraction, the check rounds it away): such a value fails here, named. Called with (dict "where" "value"); gives the number as text.
*/}}
{{- define "maos.wholeNumberSetting" -}}
{{- /* `fraction`: MAOS takes a fraction here (shutdown seconds); it is rounded up, as the checks against it need the longest wait. */ -}}
{{- $pattern := ternary `^(0|[1-9][0-9]*)(\.[0-9]+)?$` `^(0|[1-9][0-9]*)$` (default false .fraction) -}}
{{- if kindIs "string" .value -}}
{{- /* A number of values.yaml is a json.Number under helm 3: of kind string, read as text. */ -}}
{{- $raw := toString .value -}}
{{- $text := regexReplaceAll `^\s+|\s+$` $raw "" -}}
{{- if not (regexMatch $pattern $text) -}}
{{- fail (printf "%s is %q, not a %s: give digits only (e.g. 60, not 60s or 1Mi). MAOS refuses a unit at start-up, and Helm would read the value as 0, so the chart's checks against it would pass" .where $raw (ternary "number of seconds" "whole number" (default false .fraction))) -}}
{{- end -}}
{{- if .fraction -}}{{- printf "%d" (int (ceil (float64 $text))) -}}{{- else -}}{{- $text -}}{{- end -}}
{{- else if kindIs "bool" .value -}}
{{- fail (printf "%s is %v, not a whole number: MAOS refuses it at start-up. Give digits only (e.g. 60)" .where .value) -}}
{{- else if .fraction -}}
{{- printf "%d" (int (ceil (float64 .value))) -}}
{{- else -}}
{{- printf "%d" (int .value) -}}
{{- end -}}
{{- end -}}
