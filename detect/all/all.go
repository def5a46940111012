// Package all links every detector into the binary: one blank import per
// detector folder.
package all

import (
	_ "github.com/tokenwatch/tokenwatch/detect/auth/failureburst"
	_ "github.com/tokenwatch/tokenwatch/detect/chain/crossapp"
	_ "github.com/tokenwatch/tokenwatch/detect/chain/sharedip"
	_ "github.com/tokenwatch/tokenwatch/detect/geo/hosting"
	_ "github.com/tokenwatch/tokenwatch/detect/geo/impossibletravel"
	_ "github.com/tokenwatch/tokenwatch/detect/geo/newasn"
	_ "github.com/tokenwatch/tokenwatch/detect/geo/newcountry"
	_ "github.com/tokenwatch/tokenwatch/detect/inventory/expired"
	_ "github.com/tokenwatch/tokenwatch/detect/inventory/reviewoverdue"
	_ "github.com/tokenwatch/tokenwatch/detect/inventory/unowned"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/dormant"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/newimpersonation"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/newuseragent"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/scopeexpansion"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/tokenage"
	_ "github.com/tokenwatch/tokenwatch/detect/lifecycle/useafterrevoke"
	_ "github.com/tokenwatch/tokenwatch/detect/volume/distinctspike"
	_ "github.com/tokenwatch/tokenwatch/detect/volume/spike"
)
