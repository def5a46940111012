package corpus

import (
	"fmt"
	"time"
)

// scenario is one labelled attack: the integration it happens to (built
// like any other, then given the traits the story needs) and the attacker's
// records injected on top of its benign traffic.
type scenario struct {
	name, incident, source string
	expected               []string
	victim                 func(g *gen) *integ
	inject                 func(g *gen, in *integ) []act
}

// Scenario names.
const (
	ScenarioDriftTokenTheft   = "oauth_token_theft_bulk_export"
	ScenarioLeakedAPIKey      = "leaked_api_key_new_infrastructure"
	ScenarioCredentialAbuse   = "credential_abuse_hosting_new_country"
	ScenarioServiceAccount    = "service_account_compromise"
	ScenarioDormant           = "dormant_integration_reactivation"
	ScenarioScopeCreep        = "scope_creep_after_vendor_update"
	ScenarioCrossApp          = "cross_app_chaining"
	ScenarioUseAfterRevoke    = "use_after_revoke"
	detNewCountry             = "geo.new_country"
	detNewASN                 = "geo.new_asn"
	detHosting                = "geo.hosting_or_anonymizer"
	detNewUA                  = "lifecycle.new_user_agent"
	detSpike                  = "volume.spike"
	detDistinct               = "volume.distinct_spike"
	detDormant                = "lifecycle.dormant_reactivation"
	detScope                  = "lifecycle.scope_expansion"
	detCrossApp               = "chain.cross_app"
	detUseAfterRevoke         = "lifecycle.use_after_revoke"
	attackerPythonUA          = "python-requests/2.32.3"
	salesforceMultiOrgFetcher = "Salesforce-Multi-Org-Fetcher/1.0"
)

var scenarios = []scenario{
	{
		name:     ScenarioDriftTokenTheft,
		incident: "Salesloft Drift → Salesforce (UNC6395, Aug 2025): stolen OAuth refresh tokens of the Drift connected app used from Tor and VPS infrastructure to bulk-export Account, Contact, Case and Opportunity records",
		source:   "salesforce",
		expected: []string{detSpike, detNewASN, detNewCountry, detHosting, detNewUA},
		victim: func(g *gen) *integ {
			return g.victimOf("salesforce", "", func(in *integ) {
				in.name, in.ua, in.regions, in.rate = "Drift", "Drift-Salesforce-Sync/5.2 (+https://www.drift.com)", []int{awsUS}, 2.5
				in.aux["client"], in.aux["user"] = "Drift/5.2", "drift-integration@acme.example"
				in.ops = []op{{name: "Query", target: "Contact"}, {name: "Query", target: "Lead"}, {name: "QueryMore", target: "Contact"}, {name: "Update", target: "Lead", write: true}}
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(23).Add(3*time.Hour + 17*time.Minute + 41*time.Second)
			var out []act
			for k, ent := range []string{"Organization", "User", "Account", "Contact"} {
				out = append(out, act{t: start.Add(time.Duration(k) * 20 * time.Second), in: in, u: in.users[0], region: torDE,
					ip: hashIP(sites[torDE].prefix, "exit", fmt.Sprint(k%2)), ua: attackerPythonUA, op: &op{name: "Query", target: ent}, rows: 1 + int64(g.r.IntN(50)), cred: "atkLoginKey0Tor1"})
			}
			bulk := start.Add(3 * time.Minute)
			ents := []string{"Account", "Contact", "Case", "Opportunity", "User"}
			for k := 0; k < 360; k++ {
				name := "QueryMore"
				if k%20 == 0 {
					name = "Query"
				}
				out = append(out, act{t: bulk.Add(time.Duration(k)*9*time.Second + time.Duration(g.r.IntN(4000))*time.Millisecond), in: in, u: in.users[0], region: vultrUS,
					ip: hashIP(sites[vultrUS].prefix, "drift-exfil", fmt.Sprint(k%3)), ua: salesforceMultiOrgFetcher, op: &op{name: name, target: ents[(k/20)%len(ents)]}, rows: 2000, cred: "atkLoginKey1Vps2"})
			}
			return out
		},
	},
	{
		name:     ScenarioLeakedAPIKey,
		incident: "BeyondTrust Remote Support SaaS (Dec 2024): a leaked infrastructure API key used from attacker infrastructure; here a GitHub classic PAT of a deploy tool pulling every repository",
		source:   "github",
		expected: []string{detNewASN, detHosting, detNewUA, detDistinct},
		victim: func(g *gen) *integ {
			return g.victimOf("github", "pat", func(in *integ) {
				in.name, in.ua, in.regions, in.rate = "deploy-automation", "deploy-agent/3.4.1", []int{azureUS}, 1.2
				in.ops = []op{githubActions[0], githubActions[1], githubActions[2]}
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(27).Add(22*time.Hour + 40*time.Minute + 5*time.Second)
			perm := g.r.Perm(repoCount)[:70]
			var out []act
			for k := 0; k < 85; k++ {
				o := &githubActions[3] // repo.download_zip
				if k%3 == 2 {
					o = &githubActions[0]
				}
				out = append(out, act{t: start.Add(time.Duration(k)*28*time.Second + time.Duration(g.r.IntN(5000))*time.Millisecond), in: in, u: in.users[0], region: vultrUS,
					ip: hashIP(sites[vultrUS].prefix, "bt-key", fmt.Sprint(k%2)), ua: "curl/8.5.0", op: o, res: repoName(in.aux["org"], perm[k%len(perm)])})
			}
			return out
		},
	},
	{
		name:     ScenarioCredentialAbuse,
		incident: "Snowflake customer breaches (UNC5537, 2024): stolen service credentials replayed from VPS hosting in a new country with the FROSTBITE/rapeflake client",
		source:   "okta",
		expected: []string{detNewCountry, detNewASN, detHosting, detNewUA, detSpike},
		victim: func(g *gen) *integ {
			return g.victimOf("okta", "service", func(in *integ) {
				in.name, in.ua, in.regions, in.rate = "Snowflake Connector", "SnowflakeConnector/3.12.0 (python)", []int{azureUS}, 2
				in.scopes = []string{"warehouse.read", "warehouse.query"}
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(30).Add(5*time.Hour + 5*time.Minute + 13*time.Second)
			var out []act
			for k := 0; k < 160; k++ {
				out = append(out, act{t: start.Add(time.Duration(k)*18*time.Second + time.Duration(g.r.IntN(3000))*time.Millisecond), in: in, region: awsDE,
					ip: hashIP(sites[awsDE].prefix, "frostbite", fmt.Sprint(k%4)), ua: "FROSTBITE/1.0", op: &in.ops[0]})
			}
			return out
		},
	},
	{
		name:     ScenarioServiceAccount,
		incident: "Dropbox Sign (Apr 2024): a compromised automation service account used to enumerate the customer directory and its authentication data",
		source:   "microsoft",
		expected: []string{detDistinct, detSpike, detNewASN, detHosting, detNewUA},
		victim: func(g *gen) *integ {
			return g.victimOf("microsoft", "apponly", func(in *integ) {
				in.name, in.ua, in.regions, in.rate = "Config Automation", "ConfigAutomation/7.1 msgraph-sdk-python/1.2", []int{azureUS}, 1
				in.ops = []op{graphAppOps[7], graphAppOps[0], graphAppOps[8]}
				in.scopes = []string{"Application.Read.All", "User.Read.All"}
				in.aux["resources"] = "Microsoft Graph"
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(33).Add(1*time.Hour + 20*time.Minute + 44*time.Second)
			ip := func(k int) string { return hashIP(sites[awsUS].prefix, "svc-abuse", fmt.Sprint(k%2)) }
			out := []act{{t: start, in: in, kind: actSignIn, region: awsUS, ip: ip(0), ua: attackerPythonUA, res: "Microsoft Graph", op: &in.ops[0]}}
			for k := 0; k < 420; k++ {
				uid := guidFrom(in.tenant, "directory-user", fmt.Sprint(k/2))
				path := "/v1.0/users/" + uid
				if k%2 == 1 {
					path += "/authentication/methods"
				}
				out = append(out, act{t: start.Add(5*time.Second + time.Duration(k)*5*time.Second + time.Duration(g.r.IntN(2000))*time.Millisecond), in: in, region: awsUS,
					ip: ip(k), ua: attackerPythonUA, op: &op{name: "GET"}, res: path, bytes: 2000 + int64(g.r.IntN(18000))})
			}
			return out
		},
	},
	{
		name:     ScenarioDormant,
		incident: "Midnight Blizzard → Microsoft (Jan 2024): a legacy, long-unused OAuth test application reactivated to read mailboxes; here a Google Workspace app silent for a month",
		source:   "google_workspace",
		expected: []string{detDormant, detNewCountry, detNewASN},
		victim: func(g *gen) *integ {
			return g.victimOf("google_workspace", "", func(in *integ) {
				in.kind, in.name, in.regions, in.rate, in.last = kindVendor, "Legacy Test App", []int{gcpUS}, 1, 5
				in.ops = []op{{name: "gmail.users.messages.list", target: "gmail", extra: "GMAIL"}, {name: "gmail.users.messages.get", target: "gmail", extra: "GMAIL"}}
				in.scopes = []string{googleScopes["gmail"]}
				for _, u := range in.users {
					u.region, u.trips = 0, nil
				}
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(38).Add(4*time.Hour + 10*time.Minute + 27*time.Second)
			var out []act
			for k := 0; k < 60; k++ {
				out = append(out, act{t: start.Add(time.Duration(k)*30*time.Second + time.Duration(g.r.IntN(3000))*time.Millisecond), in: in, u: in.users[k%len(in.users)], region: mtnNG,
					ip: hashIP(sites[mtnNG].prefix, "proxy", fmt.Sprint(k%5)), op: &in.ops[k%2], bytes: 30000 + int64(g.r.IntN(200000))})
			}
			return out
		},
	},
	{
		name:     ScenarioScopeCreep,
		incident: "vendor update that broadens an app's scopes to message history and then harvests files (the OAuth-app supply-chain pattern behind the Salesloft Drift and CircleCI incidents)",
		source:   "slack",
		expected: []string{detScope, detSpike, detDistinct},
		victim: func(g *gen) *integ {
			return g.victimOf("slack", "", func(in *integ) {
				in.name, in.regions, in.rate = "Standup Bot", []int{awsUS}, 1.5
				in.ops = []op{slackOps[0], slackOps[2]}
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(25).Add(15*time.Hour + 2*time.Minute + 10*time.Second)
			extra := []string{"channels:history", "groups:history", "im:history", "mpim:history", "users:read.email", "files:write"}
			out := []act{{t: start, in: in, u: in.users[0], kind: actScopes, ip: g.adminIP(in, 25), ua: browserUA, scopes: extra, prev: in.scopes, region: tenantByName(in.tenant).home}}
			for k := 0; k < 140; k++ {
				out = append(out, act{t: start.Add(4*time.Minute + time.Duration(k)*19*time.Second), in: in, u: in.users[g.r.IntN(len(in.users))], region: awsUS,
					ip: g.vendorIP(in, awsUS, 25), ua: in.ua, op: &slackOps[0]})
			}
			return out
		},
	},
	{
		name:     ScenarioCrossApp,
		incident: "Midnight Blizzard → Microsoft (Jan 2024): an OAuth app's credential used to reach Exchange Online and other resources beyond its purpose; here a mail archiver's secret chaining Exchange, SharePoint, Key Vault and ARM within minutes",
		source:   "microsoft",
		expected: []string{detCrossApp},
		victim: func(g *gen) *integ {
			return g.victimOf("microsoft", "apponly", func(in *integ) {
				in.name, in.ua, in.regions, in.rate = "Mail Archiver", "MailArchiver/4.0 msgraph-sdk/1.0", []int{awsUS}, 2
				in.ops = []op{graphAppOps[2], graphAppOps[1]}
				in.scopes = []string{"Mail.Read", "User.Read.All"}
				in.aux["resources"] = "Microsoft Graph"
			})
		},
		inject: func(g *gen, in *integ) []act {
			start := g.day(35).Add(9*time.Hour + 12*time.Minute)
			var out []act
			res := []string{"Office 365 Exchange Online", "Office 365 SharePoint Online", "Azure Key Vault", "Windows Azure Service Management API", "Microsoft Teams Services"}
			for k := 0; k < 10; k++ {
				out = append(out, act{t: start.Add(time.Duration(k)*150*time.Second + time.Duration(g.r.IntN(9000))*time.Millisecond), in: in, kind: actSignIn, region: awsUS,
					ip: g.vendorIP(in, awsUS, 35), ua: in.ua, res: res[k%len(res)], op: &in.ops[0]})
			}
			return out
		},
	},
	{
		name:     ScenarioUseAfterRevoke,
		incident: "revocation that did not take: a departed user's grant revoked by an admin, then still used by the vendor (the gap Salesloft Drift responders had to close by revoking every token)",
		source:   "google_workspace",
		expected: []string{detUseAfterRevoke},
		victim: func(g *gen) *integ {
			return g.victimOf("google_workspace", "", func(in *integ) {
				in.kind, in.name, in.regions, in.rate = kindVendor, "MailMerge Pro", []int{gcpUS}, 2
				in.ops = []op{{name: "gmail.users.messages.send", target: "gmail", extra: "GMAIL", write: true}, {name: "gmail.users.messages.list", target: "gmail", extra: "GMAIL"}}
				in.scopes = []string{googleScopes["gmail"]}
				for _, u := range in.users {
					u.region, u.trips = 0, nil
				}
			})
		},
		inject: func(g *gen, in *integ) []act {
			// The departed user's own history: granted on day 0, used on workdays.
			u := g.newUser(in, 99)
			u.region = 0
			var out []act
			out = append(out, act{t: g.day(0).Add(time.Duration(in.peakUTC)*time.Hour + 50*time.Minute), in: in, u: u, kind: actAuthorize, region: gcpUS, ip: g.vendorIP(in, gcpUS, 0), scopes: in.scopes})
			for d := 0; d < 31; d++ {
				if wd := g.day(d).Weekday(); wd == time.Saturday || wd == time.Sunday {
					continue
				}
				for k := 0; k < 3; k++ {
					out = append(out, act{t: g.day(d).Add(time.Duration(in.peakUTC+1+2*k)*time.Hour + time.Duration(g.r.IntN(3600))*time.Second), in: in, u: u, region: gcpUS,
						ip: g.vendorIP(in, gcpUS, d), op: &in.ops[k%2], bytes: 5000 + int64(g.r.IntN(40000))})
				}
			}
			revoked := g.day(31).Add(time.Duration(in.peakUTC+1)*time.Hour + 4*time.Minute)
			tail := []act{{t: revoked, in: in, u: u, kind: actRevoke, region: gcpUS, ip: g.vendorIP(in, gcpUS, 31)}}
			use := revoked.Add(2*time.Hour + 27*time.Minute + 9*time.Second)
			for k := 0; k < 25; k++ {
				tail = append(tail, act{t: use.Add(time.Duration(k)*84*time.Second + time.Duration(g.r.IntN(5000))*time.Millisecond), in: in, u: u, region: gcpUS,
					ip: g.vendorIP(in, gcpUS, 31), op: &in.ops[k%2], bytes: 5000 + int64(g.r.IntN(40000))})
			}
			for _, a := range out {
				g.emit(a) // benign part: not labelled
			}
			return tail
		},
	},
}

// victimOf builds a plain integration of src for a scenario: present for the
// whole corpus, no batch job, none of the rarer benign noise.
func (g *gen) victimOf(src, sub string, set func(*integ)) *integ {
	in := g.newInteg(src, sub)
	in.first, in.last, in.batchHour, in.weeklyJob = 0, g.opt.Days-1, -1, false
	in.tenant = "acme"
	if t := sourceTenant[src]; t != "" {
		in.tenant = t
	}
	in.aux["org"] = tenantByName(in.tenant).githubOrg
	in.peakUTC = tenantByName(in.tenant).peakUTC
	for _, u := range in.users {
		u.trips = nil
	}
	set(in)
	for _, u := range in.users {
		if len(in.regions) > 0 {
			u.region %= len(in.regions)
		}
	}
	return in
}

// attacks injects every scenario and labels it. The label spans the
// attacker's records (the revoke, scope change… that sets the stage
// included).
func (g *gen) attacks() {
	for i, sc := range scenarios {
		in := g.victims[i]
		acts := sc.inject(g, in)
		for _, a := range acts {
			g.emit(a)
		}
		start, end := acts[0].t, acts[0].t
		for _, a := range acts {
			if a.t.Before(start) {
				start = a.t
			}
			if a.t.After(end) {
				end = a.t
			}
		}
		g.labels = append(g.labels, Label{Scenario: sc.name, Incident: sc.incident, Source: sc.source, Tenant: in.normalizedTenant(),
			IntegrationID: in.id, Start: start.UTC().Truncate(time.Second), End: end.UTC().Truncate(time.Millisecond), Expected: sc.expected, Events: len(acts)})
	}
}

// normalizedTenant is the tenant the connector will put on the events.
func (in *integ) normalizedTenant() string {
	t := tenantByName(in.tenant)
	switch in.src {
	case "google_workspace":
		return t.googleCustomer
	case "github":
		return t.githubOrg
	}
	return in.tenant
}
