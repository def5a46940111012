// Package all links every source connector into the binary: one blank import
// per connector folder.
package all

import (
	_ "github.com/tokenwatch/tokenwatch/ingest/github"
	_ "github.com/tokenwatch/tokenwatch/ingest/googleworkspace"
	_ "github.com/tokenwatch/tokenwatch/ingest/microsoft"
	_ "github.com/tokenwatch/tokenwatch/ingest/okta"
	_ "github.com/tokenwatch/tokenwatch/ingest/salesforce"
	_ "github.com/tokenwatch/tokenwatch/ingest/slack"
	_ "github.com/tokenwatch/tokenwatch/ingest/snowflake"
)
