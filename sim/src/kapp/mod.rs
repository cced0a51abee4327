//! A model of kapp-controller: the PackageInstall and App controllers and kapp's deploy.
