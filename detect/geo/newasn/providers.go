package newasn

import (
	"strings"
	"unicode"
)

// providers maps the autonomous systems of well-known providers that
// announce their address space from several ASNs to one network name, so a
// vendor moving between them (AWS us-east-1's AS14618 AMAZON-AES and
// us-east-2's AS16509 AMAZON-02) is not on a "new network". The names are
// what NormalizeOrg makes of the providers' own AS organisation names, so an
// ASN of theirs missing here still joins them by name.
//
// Only providers whose ASNs are one operator's infrastructure are listed:
// not registries of customers' networks, and not ISPs merely owned by the
// same group (Google Fiber is not Google Cloud).
var providers = map[uint32]string{
	// Amazon: AWS regions announce from AMAZON-02 and AMAZON-AES (us-east-1),
	// AMAZON-AS is the retail/corporate network, 8987 AWS Ireland.
	16509: "AMAZON", 14618: "AMAZON", 8987: "AMAZON", 7224: "AMAZON",
	// Google: GOOGLE, GOOGLE-CLOUD-PLATFORM, GOOGLE-2, YOUTUBE.
	15169: "GOOGLE", 396982: "GOOGLE", 19527: "GOOGLE", 36040: "GOOGLE",
	// Microsoft: MICROSOFT-CORP-MSN-AS-BLOCK (Azure), MICROSOFT-CORP-AS, the
	// Microsoft Corp / MSN blocks and ExpressRoute.
	8075: "MICROSOFT", 8068: "MICROSOFT", 8069: "MICROSOFT", 3598: "MICROSOFT", 12076: "MICROSOFT",
	// Cloudflare: CLOUDFLARENET and Cloudflare London.
	13335: "CLOUDFLARE", 209242: "CLOUDFLARE",
	// Oracle: ORACLE-BMC-31898 (Oracle Cloud) and Oracle's corporate ASN.
	31898: "ORACLE", 792: "ORACLE",
	// Akamai: AKAMAI-ASN1 (Akamai International) and AKAMAI-AS.
	20940: "AKAMAI", 16625: "AKAMAI",
}

// Network is the network an autonomous system belongs to for geo.new_asn's
// baseline: a listed provider's name, else the AS organisation normalised
// (NormalizeOrg: COMCAST-7922 and COMCAST-7015 are both COMCAST), else ""
// when nothing groups it with other ASNs (it is then only itself).
func Network(asn uint32, org string) string {
	if p, ok := providers[asn]; ok {
		return p
	}
	return NormalizeOrg(org)
}

// orgSuffixes are the trailing words NormalizeOrg drops from an AS
// organisation name: company forms (Inc., LLC, GmbH, SAS, …) and the words
// an AS name adds to its operator's (ASN, the AES of AMAZON-AES, the .com of
// Amazon.com).
var orgSuffixes = map[string]bool{
	"INC": true, "INCORPORATED": true, "LLC": true, "LTD": true, "LIMITED": true, "CORP": true,
	"CORPORATION": true, "CO": true, "COMPANY": true, "GMBH": true, "AG": true, "SA": true,
	"SAS": true, "SARL": true, "SPA": true, "SRL": true, "AB": true, "BV": true, "NV": true,
	"PLC": true, "PTY": true, "KK": true, "OY": true, "AS": true, "ASN": true, "AES": true,
	"COM": true,
}

// minOrgLen is the shortest normalised name that groups ASNs: shorter ones
// ("AT", "3") are too generic to say two networks are one operator's.
const minOrgLen = 3

// NormalizeOrg reduces an AS organisation name to its operator's: upper
// case, split into words at anything not a letter or digit, a leading "AS"
// dropped (AS-CHOOPA) and trailing numbers, single letters (L.L.C.) and
// orgSuffixes dropped. "AMAZON-02", "AMAZON-AES" and "Amazon.com, Inc." are
// all AMAZON; "Hetzner Online GmbH" is HETZNER ONLINE. It returns "" when
// fewer than three characters are left.
func NormalizeOrg(org string) string {
	words := strings.FieldsFunc(strings.ToUpper(org), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	if len(words) > 1 && words[0] == "AS" {
		words = words[1:]
	}
	for len(words) > 0 {
		w := words[len(words)-1]
		if !orgSuffixes[w] && len([]rune(w)) > 1 && !allDigits(w) {
			break
		}
		words = words[:len(words)-1]
	}
	name := strings.Join(words, " ")
	if len(name) < minOrgLen {
		return ""
	}
	return name
}

func allDigits(s string) bool {
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}
