"""gen.py - the seeded plugin generator of the read-path benchmark.

A Python copy of the generator in tools/bench-query.c (same xorshift seed,
same draws in the same order), so both tools build the same catalog shape:
names made of words, 50 providers skewed towards "aws", 6 resource types,
80/10/10 DOCKER_HUB/HARBOR/AWS_PRIVATE_ECR, 0-4 labels, tags, a capability
and a template with a JSON Schema; 80% of the plugins in domain-main, 15% in
domain-public and 5% in domain-other; 10% DISABLED.
"""

MASK = (1 << 64) - 1

PROVIDERS = [
    "aws", "google_cloud", "azure", "oracle", "alibaba", "ibm", "naver",
    "kt", "tencent", "huawei", "ncloud", "nhn", "openstack", "vmware",
    "kubernetes", "datadog", "newrelic", "grafana", "slack", "jira", "pagerduty",
    "opsgenie", "teams", "telegram", "email", "sms", "github", "gitlab",
    "bitbucket", "jenkins", "argocd", "terraform", "ansible", "prometheus", "zabbix",
    "nagios", "splunk", "elastic", "sumologic", "dynatrace", "appdynamics", "sentry",
    "mongodb", "mysql", "postgres", "redis", "kafka", "rabbitmq", "nginx",
    "cloudflare"]
ADJECTIVES = ["Cloud", "Fast", "Smart", "Secure", "Simple",
              "Global", "Hybrid", "Realtime", "Unified", "Lite"]
NOUNS = ["Cost", "Inventory", "Alert", "Jira", "Slack",
         "Metric", "Log", "Billing", "Security", "Compliance",
         "Network", "Storage", "Compute", "Database", "Identity"]
KINDS = [("inventory.Collector", "Collector"),
         ("monitoring.DataSource", "DataSource"),
         ("notification.Protocol", "Notification Protocol"),
         ("cost_analysis.DataSource", "Cost Source"),
         ("identity.Auth", "Auth"),
         ("monitoring.Webhook", "Webhook")]
LABELS = [
    "Compute", "Storage", "Network", "Database", "Security", "Container",
    "Serverless", "Analytics", "AI", "IoT", "Jira", "Slack",
    "Email", "SMS", "Webhook", "Billing", "Cost", "Identity",
    "Logging", "Monitoring", "beta", "official", "community", "deprecated",
    "GPU", "Backup", "CDN", "DNS", "Queue", "Cache"]

ECR_HOST = "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com"
HARBOR_HOST = "harbor.example.com"
DOMAINS = ("domain-main", "domain-public", "domain-other")


class Generator:
    """Yields (domain, disabled, register_body) for plugin 0, 1, 2, ..."""

    def __init__(self, seed=42):
        self.rng = seed

    def rnd(self):
        r = self.rng
        r ^= r >> 12
        r ^= (r << 25) & MASK
        r ^= r >> 27
        self.rng = r
        return (r * 2685821657736338717) & MASK

    def unit(self):
        return (self.rnd() >> 11) / 9007199254740992.0

    def pick(self, seq):
        return seq[self.rnd() % len(seq)]

    def request(self, i):
        noun = self.pick(NOUNS)
        adj = self.pick(ADJECTIVES)
        k = self.rnd() % len(KINDS)
        p = int(50.0 * self.unit() * self.unit())
        r = self.unit()
        if r < 0.8:
            registry_type, registry_url = "DOCKER_HUB", "registry.hub.docker.com"
        elif r < 0.9:
            registry_type, registry_url = "HARBOR", HARBOR_HOST
        else:
            registry_type, registry_url = "AWS_PRIVATE_ECR", ECR_HOST
        provider = PROVIDERS[p]
        resource_type, kind = KINDS[k]
        image = ("cloudforet/plugin-%s-%06d" % (provider, i)).replace("_", "-")
        labels = [self.pick(LABELS) for _ in range(self.rnd() % 5)]
        priority = self.rnd() % 5
        return {
            "name": "%s %s %s %s" % (adj, provider, noun, kind),
            "resource_type": resource_type,
            "image": image,
            "provider": provider,
            "registry_type": registry_type,
            "registry_url": registry_url,
            "registry_config": {"region": "ap-northeast-2", "account_id": "123456789012"},
            "capability": {"supported_schema": ["credentials"], "monitoring_type": "METRIC"},
            "template": {"options": {"schema": {
                "type": "object",
                "properties": {"domain": {"type": "string", "title": "Domain"}},
                "required": ["domain"]}}},
            "labels": labels,
            "tags": {"description": "%s %s plugin for %s (%s)" % (adj, noun, provider,
                                                                 resource_type),
                     "icon": "https://assets.example.com/icons/plugin.svg",
                     "priority": priority},
        }

    def plugin(self, i):
        d = self.unit()
        domain = DOMAINS[0] if d < 0.8 else DOMAINS[1] if d < 0.95 else DOMAINS[2]
        body = self.request(i)
        disabled = self.unit() < 0.1
        return domain, disabled, body


def plugins(n, seed=42):
    """The first n generated plugins as a list of (domain, disabled, body)."""
    g = Generator(seed)
    return [g.plugin(i) for i in range(n)]
