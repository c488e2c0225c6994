# Inputs of the MAOS module. Secrets (database URL, extra secret env) are marked sensitive and
# reach the cluster only as a Kubernetes Secret, never as Helm values.

variable "release_name" {
  description = "Helm release name; also the prefix of the created resources."
  type        = string
  default     = "maos"
}

variable "namespace" {
  description = "Namespace to deploy into."
  type        = string
  default     = "maos"
}

variable "create_namespace" {
  description = "Create the namespace (false when it is managed elsewhere)."
  type        = bool
  default     = true
}

variable "chart_path" {
  description = "Path or repository URL of the MAOS chart; null = the chart in this repository (deploy/helm/maos)."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version when chart_path is a repository; ignored for a local path."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "Container image repository of MAOS."
  type        = string
  default     = "ghcr.io/maos-project/maos"
}

variable "image_tag" {
  description = "Container image tag; empty = the chart's appVersion. Pin it in production."
  type        = string
  default     = ""
}

variable "database_mode" {
  description = "sqlite (one replica on a volume) or postgres (replicas share an external PostgreSQL)."
  type        = string
  default     = "postgres"
  validation {
    condition     = contains(["sqlite", "postgres"], var.database_mode)
    error_message = "database_mode must be sqlite or postgres."
  }
}

variable "database_url" {
  description = "PostgreSQL URL (postgres://user:password@host:5432/db?sslmode=require); stored in the module's Secret. Leave null with existing_secret_name (the plan fails: that Secret holds MAOS_STORE__URL)."
  type        = string
  default     = null
  sensitive   = true
}

variable "existing_secret_name" {
  description = "Existing Secret whose keys become the pods' environment (must hold MAOS_STORE__URL in postgres mode); null = the module creates one."
  type        = string
  default     = null
}

variable "secret_env" {
  description = "Extra secret environment variables (e.g. MAOS_AUDIT__SIGNING_KEY) for the module's Secret; empty with existing_secret_name (the plan fails: the pods read that Secret instead)."
  type        = map(string)
  default     = {}
  sensitive   = true
  # A MAOS_*_FILE variable names a mounted file: any other value, most likely the secret itself, the
  # server would name in its "cannot read" error. A relative path is read from its working directory.
  validation {
    condition = alltrue([
      for name, value in var.secret_env : startswith(value, "/") if startswith(name, "MAOS_") && endswith(name, "_FILE")
    ])
    error_message = "secret_env holds a MAOS_*_FILE variable whose value is not an absolute path (not shown here): set it to the absolute path of a file mounted through extra_values (e.g. /run/secrets/maos/<name>), or set the secret under the variable without _FILE."
  }
}

variable "replicas" {
  description = "Replicas in postgres mode without autoscaling (sqlite mode always runs one)."
  type        = number
  default     = 2
  # As the chart's schema (replicaCount): helm would refuse it at apply, after the Secret exists.
  validation {
    condition     = var.replicas >= 0 && floor(var.replicas) == var.replicas
    error_message = "replicas must be a whole number, 0 or more."
  }
}

variable "autoscaling" {
  description = "CPU autoscaling in postgres mode: enabled, min and max replicas, target CPU percent."
  type = object({
    enabled     = bool
    min         = number
    max         = number
    cpu_percent = number
  })
  default = {
    enabled     = false
    min         = 2
    max         = 10
    cpu_percent = 70
  }
  # As the chart's schema and its HPA template, which would refuse them at apply.
  validation {
    condition = alltrue([
      for value in [var.autoscaling.min, var.autoscaling.max, var.autoscaling.cpu_percent] : value >= 1 && floor(value) == value
    ])
    error_message = "autoscaling.min, max and cpu_percent must be whole numbers, 1 or more."
  }
  validation {
    condition     = !var.autoscaling.enabled || var.autoscaling.min <= var.autoscaling.max
    error_message = "autoscaling.min is above autoscaling.max: Kubernetes refuses such a HorizontalPodAutoscaler."
  }
}

variable "auth_mode" {
  description = "Authentication mode: apikey, oidc or both."
  type        = string
  default     = "apikey"
  validation {
    condition     = contains(["apikey", "oidc", "both"], var.auth_mode)
    error_message = "auth_mode must be apikey, oidc or both."
  }
}

variable "oidc_issuer" {
  description = "OIDC issuer URL, exactly as in the tokens' iss claim (required for auth_mode oidc/both)."
  type        = string
  default     = ""
}

variable "oidc_audience" {
  description = "Audience (resource identifier of this API) that access tokens must carry (required for auth_mode oidc/both)."
  type        = string
  default     = ""
}

variable "oidc_roles_claim" {
  description = "Token claim holding role or group names (dotted path allowed)."
  type        = string
  default     = "roles"
}

variable "oidc_role_mapping" {
  description = "IdP role or group name to MAOS built-in roles (viewer, developer, operator, auditor, admin), e.g. { \"maos-admins\" = [\"admin\"] }; empty = only built-in role names count."
  type        = map(list(string))
  default     = {}
}

variable "oidc_console_client_id" {
  description = "Client id of the web console at the IdP (public client, authorization code + PKCE, redirect URI https://<host>/console/); empty = API key/token paste only."
  type        = string
  default     = ""
}

variable "oidc_console_token_endpoint_origin" {
  description = "Origin (https://host[:port]) of the IdP token endpoint when it is not the issuer's, added to the console CSP; empty = on the issuer's origin."
  type        = string
  default     = ""
}

variable "ingress_host" {
  description = "Host name of the Ingress; null = no Ingress."
  type        = string
  default     = null
}

variable "ingress_class" {
  description = "IngressClass of the Ingress (SSE-friendly annotations target ingress-nginx)."
  type        = string
  default     = "nginx"
}

variable "ingress_tls_secret" {
  description = "TLS Secret of the Ingress host; null = plain HTTP."
  type        = string
  default     = null
  # A Secret's name (DNS subdomain), as the chart's schema takes it (an empty name leaves the host on the controller's default certificate).
  validation {
    condition     = var.ingress_tls_secret == null || can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.ingress_tls_secret))
    error_message = "ingress_tls_secret must be the name of a kubernetes.io/tls Secret (lower-case letters, digits, '-' and '.'), or null for plain HTTP."
  }
}

variable "tls_secret" {
  description = "kubernetes.io/tls Secret MAOS serves HTTPS with itself (HTTPS probes and ingress backend); null = plain HTTP to the pods."
  type        = string
  default     = null
  # A Secret's name (DNS subdomain), as the chart's schema takes it (an empty name would render plain HTTP while service_url says https).
  validation {
    condition     = var.tls_secret == null || can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.tls_secret))
    error_message = "tls_secret must be the name of a kubernetes.io/tls Secret (lower-case letters, digits, '-' and '.'), or null for plain HTTP."
  }
}

variable "audit_checkpoints_persistence" {
  description = "A volume of its own for the audit checkpoint files (the chart's auditCheckpoints.persistence): enabled, existing_claim (a PVC every replica can mount), or size, storage_class and access_modes of the PVC the chart creates (ReadWriteMany in postgres mode, also at one replica: a rolling update mounts it in the old and the new pod at once)."
  type = object({
    enabled        = bool
    existing_claim = optional(string, "")
    size           = optional(string, "1Gi")
    storage_class  = optional(string, "")
    access_modes   = optional(list(string), ["ReadWriteMany"])
  })
  default = { enabled = false }
  validation {
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$", var.audit_checkpoints_persistence.size))
    error_message = "audit_checkpoints_persistence.size must be a Kubernetes quantity, e.g. 1Gi or 500Mi."
  }
  validation {
    condition = length(var.audit_checkpoints_persistence.access_modes) > 0 && alltrue([
      for mode in var.audit_checkpoints_persistence.access_modes :
      contains(["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany", "ReadOnlyMany"], mode)
    ])
    error_message = "audit_checkpoints_persistence.access_modes must list one or more of ReadWriteOnce, ReadWriteOncePod, ReadWriteMany, ReadOnlyMany."
  }
}

variable "config" {
  description = "MAOS configuration merged into the chart's config file (a ConfigMap), as a map. No secrets: put them in secret_env as MAOS_* variables (e.g. MAOS_PROVIDERS__OPENAI__API_KEY), or name a mounted file with the key's *_FILE variant."
  type        = any
  default     = {}
  # What `maos config print` redacts, as the chart refuses it (at apply, after a plan that showed it):
  # a string under a key named like a secret, any value of a provider's headers or a runner's env, a
  # URL with a password or a secret in its query. Read off the JSON text: Terraform cannot walk a
  # nested value of any type.
  # `required` and `none` pass: the values of llm.approval.tenants, keyed by tenant ids (token-team).
  validation {
    condition = length([
      for match in regexall("\"([^\"]*)\":\"([^\"]*)\"", jsonencode(var.config)) : match[0]
      if can(regex("(?i)(secret|password|passphrase|token|apikey|api_key|privatekey|signingkey|kek)", match[0])) && !endswith(match[0], "_FILE") && !contains(["", "required", "none"], match[1])
    ]) == 0
    error_message = "config holds a secret (apiKey, audit.signingKey, secrets.kekRing or another key named like a secret), which would be stored in the chart's ConfigMap: set it in secret_env as its MAOS_* variable (e.g. MAOS_AUDIT__SIGNING_KEY), or set the key's *_FILE variant to a file mounted through extra_values."
  }
  validation {
    condition = length(flatten([
      for entries in regexall("\"(?:headers|env)\":\\{([^{}]*)\\}", jsonencode(var.config)) : [
        for match in regexall("\"([^\"]*)\":\"", entries[0]) : match[0] if !endswith(match[0], "_FILE")
      ]
    ])) == 0
    error_message = "config holds a provider's headers or a runner's env, whose every value MAOS treats as a secret and which would be stored in the chart's ConfigMap: set them in secret_env (e.g. MAOS_PROVIDERS__GW__HEADERS__AUTHORIZATION, MAOS_RUNNERS__NPM__ENV__NPM_TOKEN), or use <NAME>_FILE entries naming files mounted through extra_values."
  }
  validation {
    # user:password@ anywhere, and as a URL parser reads a value that is a URL: the password runs to
    # the last @ of the authority, also without a user name (postgres://:pw@db, me@corp:pw@db).
    condition     = !can(regex("//[^:/@\\s\"]+:[^@\\s\"]+@", jsonencode(var.config))) && !can(regex("(?i)\"[a-z][a-z0-9+.-]*://[^/\\\\?#\\s:\"]*:[^/\\\\?#\\s\"]+@", jsonencode(var.config)))
    error_message = "config holds a URL with a password (user:password@), which would be stored in the chart's ConfigMap: set it in secret_env as its MAOS_* variable (database_url for the database), or set the key's *_FILE variant to a file mounted through extra_values."
  }
  validation {
    # A URL whose query has a parameter named like a secret, `api-key`, `key` or `sig` (a gateway's
    # ?key=, Azure's api-key=); ?api-version= passes. jsonencode writes & as \u0026.
    condition     = !can(regex("(?i)\"[a-z][a-z0-9+.-]*://[^?#\\s\"]*\\?([^#\\s\"]*(&|\\\\u0026))?([^=&#\\s\"\\\\]*(secret|password|passphrase|token|apikey|api_key|api-key|privatekey|signingkey|kek)[^=&#\\s\"\\\\]*|key|sig)=[^&#\\s\"\\\\]", jsonencode(var.config)))
    error_message = "config holds a URL with a secret in its query (?key=, ?api-key=, ?token= …), which would be stored in the chart's ConfigMap: set it in secret_env as its MAOS_* variable (e.g. MAOS_PROVIDERS__GW__BASE_URL), or set the key's *_FILE variant to a file mounted through extra_values."
  }
  validation {
    # A *_FILE key names a mounted file by its absolute path (a string starting with /): anything else,
    # most likely the secret itself put where its file goes, passes the checks above and would be
    # stored in the ConfigMap. The chart refuses it too (maos.refuseFileKeyNotPath).
    condition = length([
      for match in regexall("\"[^\"]*_FILE\":(.)(.)", jsonencode(var.config)) : match if match[0] != "\"" || match[1] != "/"
    ]) == 0
    error_message = "config holds a *_FILE key whose value is not an absolute path, which would be stored in the chart's ConfigMap: set it to the absolute path of a file mounted through extra_values (e.g. /run/secrets/maos/<name>), or set the secret in secret_env as its MAOS_* variable."
  }
}

variable "extra_values" {
  description = "Further chart values (YAML strings), applied after the module's own. Not for secrets: use secret_env and database_url."
  type        = list(string)
  default     = []
  # The module gives the chart its own Secret (existingSecret), so the chart ignores its secretEnv and
  # database.postgres.url: set there, a secret would be shown in plans, stored in the release, unused.
  validation {
    condition = alltrue([
      for text in var.extra_values : !can(yamldecode(text).secretEnv) && !can(yamldecode(text).database.postgres.url)
    ])
    error_message = "extra_values must not set secretEnv or database.postgres.url: the chart ignores them next to the module's Secret (existingSecret). Use secret_env and database_url, which reach the pods through that Secret."
  }
  # helm_release waits 900 s (its timeout) for the pre-install/pre-upgrade migration Job, then rolls
  # the release back (atomic) while a Job allowed to run longer goes on migrating the database.
  validation {
    condition = alltrue([
      for text in var.extra_values : try(tonumber(yamldecode(text).migration.activeDeadlineSeconds), 0) < 900
    ])
    error_message = "extra_values sets migration.activeDeadlineSeconds to 900 or more, the release's timeout: helm would give up on the migration Job and roll the release back while the Job goes on migrating the database. Keep it below 900."
  }
}
