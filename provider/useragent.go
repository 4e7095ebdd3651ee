package provider

import "strings"

// Device is what a browser is, from its User-Agent: shown on the sessions
// page and by the CLI.
type Device struct {
	// Browser and OS are "" when not recognised.
	Browser, OS string
}

// uaBrowsers are matched in order: many browsers name others too (Edge and
// Opera say Chrome, Chrome says Safari).
var uaBrowsers = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
	{"Safari/", "Safari"},
	{"curl/", "curl"},
}

// uaSystems are matched in order: Android says Linux, iOS says Mac OS X.
var uaSystems = []struct{ token, name string }{
	{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"},
	{"CrOS", "ChromeOS"}, {"Windows", "Windows"}, {"Mac OS X", "macOS"}, {"Macintosh", "macOS"},
	{"Linux", "Linux"},
}

// ParseUserAgent names the browser and the operating system of a
// User-Agent header, as far as a short table knows them.
func ParseUserAgent(ua string) Device {
	var d Device
	for _, b := range uaBrowsers {
		if strings.Contains(ua, b.token) {
			d.Browser = b.name
			break
		}
	}
	for _, s := range uaSystems {
		if strings.Contains(ua, s.token) {
			d.OS = s.name
			break
		}
	}
	return d
}

// String is the device in English, e.g. "Firefox on Linux"; "unknown" when
// nothing is recognised.
func (d Device) String() string {
	switch {
	case d.Browser != "" && d.OS != "":
		return d.Browser + " on " + d.OS
	case d.Browser != "":
		return d.Browser
	case d.OS != "":
		return d.OS
	}
	return "unknown"
}
